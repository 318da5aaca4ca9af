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
