"""Prepare a loaded model for fast decode: fuse projections, then swap linears for int8/int4 kernels."""
import torch
from torch import nn

from qwenkit.errors import InvalidRequestError
from qwenkit.layers.attention import Attention
from qwenkit.layers.mlp import MLP
from qwenkit.layers.quant import Int4Linear, Int8Embedding, Int8Linear, RefinedHead, int4_group_size
from qwenkit.models.decoder import CausalLM

QUANT_MODES = ("none", "int8", "int4")


def fuse_projections(model: CausalLM) -> None:
    """q/k/v into one qkv_proj and gate/up into one gate_up_proj: fewer, larger matmuls per layer."""
    for module in model.modules():
        if isinstance(module, Attention) and module.qkv_proj is None:
            module.qkv_proj = _concat([module.q_proj, module.k_proj, module.v_proj])
            del module.q_proj, module.k_proj, module.v_proj
        elif isinstance(module, MLP) and module.gate_up_proj is None:
            module.gate_up_proj = _concat([module.gate_proj, module.up_proj])
            del module.gate_proj, module.up_proj


def _concat(linears: list[nn.Linear]) -> nn.Linear:
    weight = torch.cat([m.weight for m in linears])
    bias = torch.cat([m.bias for m in linears]) if linears[0].bias is not None else None
    fused = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device="meta")
    fused.weight = nn.Parameter(weight, requires_grad=False)
    if bias is not None:
        fused.bias = nn.Parameter(bias, requires_grad=False)
    return fused


def quantize(model: CausalLM, mode: str, group_size: int = 32) -> CausalLM:
    """Weight-only quantization of every linear, the output head and the embeddings.

    Matmuls take bf16 inputs (the packed kernels are fast only then); the residual stream, norms and
    attention stay in the model's float dtype, which keeps greedy output close to full precision.
    """
    if mode not in QUANT_MODES:
        raise InvalidRequestError("quant", f"unknown mode {mode!r}; choose {', '.join(QUANT_MODES)} or auto")
    if mode == "none":
        return model
    if group_size not in (32, 64, 128):
        raise InvalidRequestError("group_size", "must be 32, 64 or 128")
    fuse_projections(model)
    embeddings = Int8Embedding(model.model.embed_tokens.weight)
    tied = model.lm_head.weight is model.model.embed_tokens.weight
    head_rows = embeddings if tied else Int8Embedding(model.lm_head.weight)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear) and not _is_router(name):
                setattr(parent, name, _quantized(child, mode, group_size))
    model.model.embed_tokens = embeddings
    model.lm_head = RefinedHead(model.lm_head, head_rows)
    model.quant = mode
    return model


def _is_router(name: str) -> bool:
    return name == "gate"  # the MoE router is tiny and its softmax is sensitive: keep it in float


def _quantized(linear: nn.Linear, mode: str, group_size: int) -> nn.Module:
    weight, bias = linear.weight.detach(), None if linear.bias is None else linear.bias.detach()
    if mode == "int4":
        g = int4_group_size(weight.shape[1], group_size)
        if g is not None:
            return Int4Linear.from_float(weight, bias, g)
    return Int8Linear(weight, bias)
