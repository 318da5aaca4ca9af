"""Weight-only int8 (per channel) and int4 (group-wise) linears on PyTorch's packed CPU kernels.

Decode reads every weight once per token, so bytes per weight set the speed. The packed kernels are
fast only with bf16 activations and bf16 scales: inputs are cast to bf16 for the matmul and the
result is cast back, so the rest of the model keeps its float dtype. When the input requires grad (LoRA
on a frozen quantized base), the matmul runs through QuantizedMatmul, which gives the input its gradient.

The packed kernels scale badly with rows (int4, 1536x576: 0.03 ms at 1 row, 0.19 ms at 16, 0.75 ms at 64,
against 0.08 and 0.14 ms for a dense bf16 matmul), so `densify` can keep a bf16 copy of the weight that
matmuls of DENSE_MIN_ROWS or more rows (batched decode, prefill) use, as llama.cpp does for prompts.
"""
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn import functional as F

from qwenkit.layers.quant_grad import INT4_TILES, QuantizedMatmul, int4_block, unpack_int4

DENSE_MIN_ROWS = 8


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
        self.register_buffer("dense", None, persistent=False)

    dequantizable = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        y = _matmul(self, x.reshape(-1, shape[-1]))
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features).to(x.dtype)

    def matmul(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.bfloat16)
        if self.dense is not None and x.shape[0] >= DENSE_MIN_ROWS:
            return F.linear(x, self.dense)
        return torch._weight_int8pack_mm(x, self.weight, self.scale)

    def dequantize(self, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Rows [start, stop) of the weight in float32."""
        return self.weight[start:stop].float() * self.scale[start:stop].float()[:, None]


class Int4Linear(nn.Module):
    def __init__(self, q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, group_size: int,
                 bias: torch.Tensor | None):
        super().__init__()
        scales_zeros = torch.stack([scale, zero], dim=-1).transpose(0, 1)  # [K/g, N, 2]
        self._set(torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, INT4_TILES), q.shape[1], scales_zeros,
                  group_size, bias)

    def _set(self, packed: torch.Tensor, in_features: int, scales_zeros: torch.Tensor, group_size: int,
             bias: torch.Tensor | None) -> None:
        self.out_features, self.in_features = packed.shape[0], in_features
        self.group_size = group_size
        self.register_buffer("weight", packed)
        self.register_buffer("scales_zeros", scales_zeros.to(torch.bfloat16).contiguous())
        self.register_buffer("bias", None if bias is None else bias.to(torch.bfloat16))
        self.register_buffer("dense", None, persistent=False)

    @classmethod
    def from_float(cls, weight: torch.Tensor, bias: torch.Tensor | None, group_size: int) -> "Int4Linear":
        return cls(*quantize_int4(weight, group_size), group_size, bias)

    @classmethod
    def from_row_chunks(cls, chunks: Iterable[torch.Tensor], shape: tuple[int, int], group_size: int) -> "Int4Linear":
        """Quantize and pack a large matrix (a 150k-row head) a block of rows at a time into place, so the
        full-precision matrix and its temporaries never exist at once; packed rows are independent. Scales
        and zeros go straight into the kernel's bf16 [K/g, N, 2] layout: building it from whole fp32
        [N, K/g] tables, as `__init__` does, peaked 100 MB higher for a 151,936 x 1024 head."""
        n, k = shape
        packed = torch.empty(n, k // 2, dtype=torch.uint8)
        scales_zeros = torch.empty(k // group_size, n, 2, dtype=torch.bfloat16)
        start = 0
        for w in chunks:
            q, scale, zero = quantize_int4(w, group_size)
            rows = slice(start, start + len(q))
            packed[rows] = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, INT4_TILES)
            scales_zeros[:, rows] = torch.stack([scale, zero], dim=-1).transpose(0, 1)
            start += len(q)
        linear = cls.__new__(cls)
        nn.Module.__init__(linear)
        linear._set(packed, k, scales_zeros, group_size, None)
        return linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        y = _matmul(self, x.reshape(-1, shape[-1]))
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features).to(x.dtype)

    def matmul(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.bfloat16)
        if self.dense is not None and x.shape[0] >= DENSE_MIN_ROWS:
            return F.linear(x, self.dense)
        return torch.ops.aten._weight_int4pack_mm_for_cpu(x, self.weight, self.group_size, self.scales_zeros)

    @property
    def dequantizable(self) -> bool:
        return int4_block() is not None

    def dequantize(self, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Rows [start, stop) of the weight in float32, as the kernel sees it: (q - 8) * scale + zero."""
        stop = self.out_features if stop is None else stop
        q = unpack_int4(self.weight, self.out_features, self.in_features, start, stop)
        scale, zero = self.scales_zeros[:, start:stop].float().unbind(-1)  # [K/g, rows] each
        g = self.group_size
        return (q.float() - 8) * scale.T.repeat_interleave(g, dim=1) + zero.T.repeat_interleave(g, dim=1)


def densify(model: nn.Module) -> int:
    """Give every dequantizable Int8Linear/Int4Linear a bf16 copy of its weight for many-row matmuls;
    returns the bytes added (2 per weight). Rows of the result match the packed kernel's to bf16 rounding."""
    added = 0
    for m in model.modules():
        if isinstance(m, (Int8Linear, Int4Linear)) and m.dequantizable and m.dense is None:
            dense = torch.cat([m.dequantize(i, min(i + 4096, m.out_features)).to(torch.bfloat16)
                               for i in range(0, m.out_features, 4096)])
            m.register_buffer("dense", dense, persistent=False)
            added += dense.nbytes
    return added


def _matmul(linear: Int8Linear | Int4Linear, x: torch.Tensor) -> torch.Tensor:
    """The packed kernel; through QuantizedMatmul only when x needs a gradient, so inference pays nothing."""
    if x.requires_grad and torch.is_grad_enabled():
        return QuantizedMatmul.apply(x, linear)
    return linear.matmul(x)


class Int8Embedding(nn.Module):
    """Row-wise int8 table; rows are dequantized on lookup, so the table costs one byte per weight."""

    def __init__(self, weight: torch.Tensor | Iterable[torch.Tensor], chunk: int = 8192,
                 shape: tuple[int, int] | None = None):
        """From a [rows, dim] table, or from row blocks of a `shape` table read from disk one at a time;
        each block is quantized into place, so no full-precision copy of the table is ever held."""
        super().__init__()
        if isinstance(weight, torch.Tensor):
            table, shape = weight, tuple(weight.shape)
            weight = (table[i:i + chunk] for i in range(0, shape[0], chunk))
        self.register_buffer("weight", torch.empty(shape, dtype=torch.int8))
        self.register_buffer("scale", torch.empty(shape[0]))
        start = 0
        for block in weight:
            q, scale = quantize_int8(block)
            self.weight[start:start + len(q)] = q
            self.scale[start:start + len(q)] = scale
            start += len(q)

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
