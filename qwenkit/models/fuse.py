"""Fused projections for inference: q/k/v into qkv_proj and gate/up into gate_up_proj."""
import torch
from torch import nn

from qwenkit.layers.attention import Attention
from qwenkit.layers.mlp import MLP
from qwenkit.models.decoder import CausalLM

FUSED = {"qkv_proj": ("q_proj", "k_proj", "v_proj"), "gate_up_proj": ("gate_proj", "up_proj")}


def fuse_projections(model: CausalLM) -> None:
    """Fewer, larger matmuls per layer; works on real and on meta tensors."""
    for module in model.modules():
        if isinstance(module, Attention) and module.qkv_proj is None:
            module.qkv_proj = _concat([module.q_proj, module.k_proj, module.v_proj])
            del module.q_proj, module.k_proj, module.v_proj
        elif isinstance(module, MLP) and module.gate_up_proj is None:
            module.gate_up_proj = _concat([module.gate_proj, module.up_proj])
            del module.gate_proj, module.up_proj


def _concat(linears: list[nn.Linear]) -> nn.Linear:
    weight = _cat([m.weight for m in linears])
    bias = _cat([m.bias for m in linears]) if linears[0].bias is not None else None
    fused = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device="meta")
    fused.weight = nn.Parameter(weight, requires_grad=False)
    if bias is not None:
        fused.bias = nn.Parameter(bias, requires_grad=False)
    return fused


def _cat(tensors: list[torch.Tensor]) -> torch.Tensor:
    """torch.cat, but only the shape on the meta device: torch.cat there runs a Python kernel whose first
    use imports dynamo and sympy, 145 MB that the process then keeps."""
    if not tensors[0].is_meta:
        return torch.cat(tensors)
    rows = sum(t.shape[0] for t in tensors)
    return torch.empty(rows, *tensors[0].shape[1:], dtype=tensors[0].dtype, device="meta")
