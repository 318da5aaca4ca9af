"""A base linear (float, int8 or int4, fused or not) serving any number of LoRA adapters at once.

Every token of a forward runs one adapter or none. The forward's groups, set on one small object that
all wrappers of a model share, say which rows run which adapter; each wrapper adds (x A^T) B^T to those
rows for the adapters it holds. A fused projection (qkv_proj, gate_up_proj) holds each adapter as one A
over all its parts and a block-diagonal B, so a part the adapter leaves out gets exactly zero.
"""
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from qwenkit.layers.attention import Attention
from qwenkit.layers.quant import Int4Linear, Int8Linear
from qwenkit.models.fuse import FUSED

LINEARS = (nn.Linear, Int8Linear, Int4Linear)
PART_OF = {part: fused for fused, parts in FUSED.items() for part in parts}   # q_proj -> qkv_proj


@dataclass(slots=True)
class ActiveAdapters:
    """The adapters of the current forward: (slot, rows) per adapter present, rows None when every token
    runs it; empty for the base model. Slot 0 is never listed."""
    groups: list[tuple[int, torch.Tensor | None]] = field(default_factory=list)


class MultiLoRA(nn.Module):
    def __init__(self, base: nn.Module, active: ActiveAdapters):
        super().__init__()
        self.base, self.active = base, active
        self.in_features, self.out_features = base.in_features, base.out_features
        self.loras: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}   # slot -> (A [R, in], B [out, R] scaled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        if not self.active.groups:
            return y
        flat_x, flat_y = x.reshape(-1, self.in_features), y.view(-1, self.out_features)
        for slot, rows in self.active.groups:
            pair = self.loras.get(slot)
            if pair is None:
                continue
            a, b = pair
            if rows is None:
                flat_y.addmm_(F.linear(flat_x, a), b.t())   # one kernel for the up-projection and the add
            else:
                flat_y.index_add_(0, rows, F.linear(F.linear(flat_x[rows], a), b))
        return y


@dataclass(slots=True)
class Target:
    """Where an adapter's module (a Hugging Face name) lands in a loaded model."""
    path: str            # the module to wrap: `model.layers.0.self_attn.qkv_proj`
    offset: int          # its output rows [offset, offset + size) belong to the adapter's module
    size: int
    in_features: int
    out_features: int


def locate(model: nn.Module, name: str) -> Target | str:
    """The target of the adapter module `name`, or why it cannot have one."""
    if name.startswith("lm_head") or "embed_tokens" in name:
        return "adapters on the embeddings or the output head are not supported"
    if ".experts." in name:
        return "adapters on MoE experts are not supported (attention and dense MLP projections are)"
    parent_path, _, leaf = name.rpartition(".")
    try:
        parent = model.get_submodule(parent_path)
    except AttributeError:
        return "this model has no such module"
    fused = PART_OF.get(leaf)
    if fused and getattr(parent, fused, None) is not None:
        linear = _unwrapped(getattr(parent, fused))
        sizes = _part_sizes(parent, linear.out_features)
        index = FUSED[fused].index(leaf)
        return Target(f"{parent_path}.{fused}", sum(sizes[:index]), sizes[index], linear.in_features,
                      linear.out_features)
    linear = _unwrapped(getattr(parent, leaf, None))
    if not isinstance(linear, LINEARS):
        return "this model has no such linear module"
    return Target(name, 0, linear.out_features, linear.in_features, linear.out_features)


def _unwrapped(module):
    return module.base if isinstance(module, MultiLoRA) else module


def _part_sizes(parent: nn.Module, out_features: int) -> list[int]:
    if isinstance(parent, Attention):
        d = parent.head_dim
        return [parent.num_heads * d, parent.num_kv_heads * d, parent.num_kv_heads * d]
    return [out_features // 2] * 2
