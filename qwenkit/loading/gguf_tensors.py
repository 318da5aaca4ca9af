"""GGUF tensors as a read-only mapping of Hugging Face names to torch tensors, decoded on access."""
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, ReaderTensor, quants

from qwenkit.config import ModelConfig
from qwenkit.errors import ModelLoadError
from qwenkit.loading.gguf_config import RECONVERT
from qwenkit.loading.gguf_names import expected_shapes, hf_names

F32, F16, BF16 = GGMLQuantizationType.F32, GGMLQuantizationType.F16, GGMLQuantizationType.BF16
Q4_0, Q4_1 = GGMLQuantizationType.Q4_0, GGMLQuantizationType.Q4_1


@dataclass(slots=True)
class TensorSlice:
    tensor: ReaderTensor
    expert: int | None = None
    heads: int = 0  # > 0: undo llama.cpp's q/k row permutation over this many heads


class GGUFTensors(Mapping[str, torch.Tensor]):
    """F32, F16 and BF16 tensors are views of the memory map; quantized ones are dequantized to float32
    on every access."""

    def __init__(self, slices: dict[str, TensorSlice]):
        self.slices = slices

    def __getitem__(self, name: str) -> torch.Tensor:
        return decode(self.slices[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self.slices)

    def __len__(self) -> int:
        return len(self.slices)

    def stored_type(self, name: str) -> str:
        return self.slices[name].tensor.tensor_type.name

    def int4_parts(self, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """Q4_0/Q4_1 blocks as int4-kernel operands (q [N, K] in 0..15, scale, zero [N, K/32]), exactly:
        w = (q - 8) * scale + zero. None for other types."""
        s = self.slices.get(name)
        if s is None or s.tensor.tensor_type not in (Q4_0, Q4_1) or s.expert is not None:
            return None
        parts = q4_blocks(s.tensor.data, s.tensor.tensor_type, numpy_shape(s.tensor))
        return tuple(unpermute(p, s.heads) for p in parts) if s.heads else parts


def gguf_tensors(tensors: list[ReaderTensor], cfg: ModelConfig, source: str) -> GGUFTensors:
    """Check that every tensor the config needs is present, shaped right and decodable; map it to HF names."""
    by_name = {t.name: t for t in tensors}
    slices = {}
    for name, shape in expected_shapes(cfg).items():
        t = by_name.get(name)
        if t is None:
            raise ModelLoadError(source, f"required tensor {name!r} is missing", RECONVERT)
        found = numpy_shape(t)
        if found != shape:
            raise ModelLoadError(source, f"tensor {name!r} has shape {list(found)}, expected {list(shape)} "
                                 "from the metadata", RECONVERT)
        if not decodable(t.tensor_type):
            raise ModelLoadError(source, f"tensor {name!r} has type {t.tensor_type.name}, which gguf-py "
                                 "cannot dequantize", "use a GGUF quantized to F16, Q8_0, Q4_K_M or similar")
        for hf_name, expert in hf_names(name, cfg.num_experts):
            slices[hf_name] = TensorSlice(t, expert, _permuted_heads(cfg, name))
    return GGUFTensors(slices)


def numpy_shape(t: ReaderTensor) -> tuple[int, ...]:
    return tuple(reversed(t.shape.tolist()))


def decode(s: TensorSlice) -> torch.Tensor:
    data = s.tensor.data if s.expert is None else s.tensor.data[s.expert]
    kind = s.tensor.tensor_type
    if kind in (F32, F16):
        t = torch.from_numpy(data)
    elif kind == BF16:
        t = torch.from_numpy(data).view(torch.bfloat16)
    else:
        t = torch.from_numpy(quants.dequantize(data, kind))
    return unpermute(t, s.heads) if s.heads else t


def q4_blocks(data: np.ndarray, kind: GGMLQuantizationType, shape: tuple[int, int]):
    """Split Q4_0 (d, 16 bytes) / Q4_1 (d, m, 16 bytes) blocks of 32: low nibbles are elements 0-15."""
    n, k = shape
    blocks = np.asarray(data).reshape(n, k // 32, -1)
    d = blocks[..., :2].copy().view(np.float16)[..., 0].astype(np.float32)
    offset = 2 if kind == Q4_0 else 4
    qs = blocks[..., offset:offset + 16]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).reshape(n, k).astype(np.int32)
    if kind == Q4_0:
        zero = np.zeros_like(d)
    else:
        zero = blocks[..., 2:4].copy().view(np.float16)[..., 0].astype(np.float32) + 8 * d
    return torch.from_numpy(q), torch.from_numpy(d), torch.from_numpy(zero)


def unpermute(t: torch.Tensor, heads: int) -> torch.Tensor:
    """Inverse of convert_hf_to_gguf.py's permute: rows (h, i, pair) back to (h, pair, i)."""
    return t.reshape(heads, -1, 2, *t.shape[1:]).transpose(1, 2).reshape(t.shape)


@cache
def decodable(kind: GGMLQuantizationType) -> bool:
    try:
        quants.dequantize(np.zeros((1, GGML_QUANT_SIZES[kind][1]), np.uint8), kind)
    except NotImplementedError:
        return False
    return True


def _permuted_heads(cfg: ModelConfig, name: str) -> int:
    if cfg.architecture != "llama":
        return 0
    if name.endswith(("attn_q.weight", "attn_q.bias")):
        return cfg.num_attention_heads
    if name.endswith(("attn_k.weight", "attn_k.bias")):
        return cfg.num_key_value_heads
    return 0
