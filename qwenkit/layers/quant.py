"""Weight-only int8 (per channel) and int4 (group-wise) linears on PyTorch's packed CPU kernels.

Decode reads every weight once per token, so bytes per weight set the speed. The packed kernels are
fast only with bf16 activations and bf16 scales: inputs are cast to bf16 for the matmul and the
result is cast back, so the rest of the model keeps its float dtype.
"""
import torch
from torch import nn

INT4_TILES = 2


def quantize_int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel: w ~= q * scale, q in [-127, 127]."""
    w = w.float()
    scale = (w.abs().amax(dim=1) / 127).clamp(min=1e-8)
    q = (w / scale[:, None]).round().clamp(-127, 127).to(torch.int8)
    return q, scale


def quantize_int4(w: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric per group: w ~= (q - 8) * scale + zero, q in [0, 15]; returns q [N, K] int32, scale, zero [N, K/g]."""
    n, k = w.shape
    g = w.float().reshape(n, k // group_size, group_size)
    low, high = g.amin(dim=-1), g.amax(dim=-1)
    scale = ((high - low) / 15).clamp(min=1e-8)
    q = ((g - low[..., None]) / scale[..., None]).round().clamp(0, 15).reshape(n, k).to(torch.int32)
    return q, scale, low + 8 * scale


class Int8Linear(nn.Module):
    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self._set(*quantize_int8(weight), bias)

    @classmethod
    def from_int8(cls, q: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None) -> "Int8Linear":
        """Share an existing int8 table (a tied embedding) instead of quantizing again."""
        linear = cls.__new__(cls)
        nn.Module.__init__(linear)
        linear._set(q, scale, bias)
        return linear

    def _set(self, q: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None) -> None:
        self.out_features, self.in_features = q.shape
        self.register_buffer("weight", q)
        self.register_buffer("scale", scale.to(torch.bfloat16))
        self.register_buffer("bias", None if bias is None else bias.to(torch.bfloat16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        y = torch._weight_int8pack_mm(x.reshape(-1, shape[-1]).to(torch.bfloat16), self.weight, self.scale)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features).to(x.dtype)

    def dequantize(self) -> torch.Tensor:
        return self.weight.float() * self.scale.float()[:, None]


class Int4Linear(nn.Module):
    def __init__(self, q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, group_size: int,
                 bias: torch.Tensor | None):
        super().__init__()
        self.out_features, self.in_features = q.shape
        self.group_size = group_size
        self.register_buffer("weight", torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, INT4_TILES))
        scales_zeros = torch.stack([scale, zero], dim=-1).transpose(0, 1).contiguous()  # [K/g, N, 2]
        self.register_buffer("scales_zeros", scales_zeros.to(torch.bfloat16))
        self.register_buffer("bias", None if bias is None else bias.to(torch.bfloat16))

    @classmethod
    def from_float(cls, weight: torch.Tensor, bias: torch.Tensor | None, group_size: int) -> "Int4Linear":
        return cls(*quantize_int4(weight, group_size), group_size, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(
            x.reshape(-1, shape[-1]).to(torch.bfloat16), self.weight, self.group_size, self.scales_zeros)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features).to(x.dtype)


class Int8Embedding(nn.Module):
    """Row-wise int8 table; rows are dequantized on lookup, so the table costs one byte per weight."""

    def __init__(self, weight: torch.Tensor, chunk: int = 8192):
        super().__init__()
        pieces = [quantize_int8(weight[i:i + chunk]) for i in range(0, weight.shape[0], chunk)]
        self.register_buffer("weight", torch.cat([q for q, _ in pieces]))
        self.register_buffer("scale", torch.cat([s for _, s in pieces]))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.weight[ids].float() * self.scale[ids, None]


def int4_group_size(in_features: int, preferred: int) -> int | None:
    for g in (preferred, 128, 64, 32):
        if g <= preferred and in_features % g == 0:
            return g
    return None


class RefinedHead(nn.Module):
    """Output head on a packed kernel whose bf16 logits are too coarse to rank close candidates
    (at |logit| ~ 25 bf16 steps by 0.125), so the top `refine` logits are recomputed in fp32 from the
    int8 rows. Greedy choices and logprobs then match full precision; the tail keeps bf16 resolution."""

    def __init__(self, packed: nn.Module, rows: Int8Embedding, refine: int = 64):
        super().__init__()
        self.packed, self.rows, self.refine = packed, rows, refine

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.packed(x).float()
        top = logits.topk(min(self.refine, logits.shape[-1]), dim=-1).indices
        exact = torch.einsum("...h,...kh->...k", x.float(), self.rows(top))
        return logits.scatter_(-1, top, exact)
