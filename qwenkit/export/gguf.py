"""Export a model, with LoRA adapters folded in, to a llama.cpp GGUF file at f16, q8_0 or q4_0.

Tensors are written one at a time (metadata and tensor table first), so memory stays near one weight
matrix in float32. Norms and the MoE router stay F32, as llama.cpp's converter keeps them; rows whose
length is not a multiple of 32 fall back to F16. At q4_0, token_embd and output get q8_0: like
llama-quantize, the embedding and head keep more bits.
"""
from math import prod
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFWriter, LlamaFileType, quants

from qwenkit.errors import InvalidRequestError
from qwenkit.export.gguf_meta import ARCHES, check_exportable, write_model_metadata
from qwenkit.export.gguf_vocab import copy_vocab, write_hf_vocab
from qwenkit.export.source import MergedSource, open_source
from qwenkit.export.staging import check_destination, staged_file
from qwenkit.loading.gguf_file import read_gguf
from qwenkit.loading.gguf_names import expected_shapes, hf_names

T = GGMLQuantizationType
QTYPES = {"f16": (T.F16, LlamaFileType.MOSTLY_F16), "q8_0": (T.Q8_0, LlamaFileType.MOSTLY_Q8_0),
          "q4_0": (T.Q4_0, LlamaFileType.MOSTLY_Q4_0)}
KEEP_F32 = ("ffn_gate_inp.weight",)
MORE_BITS = ("token_embd.weight", "output.weight")


def export_gguf(model: str | Path, out_file: str | Path, qtype: str = "f16", adapter: str | Path | None = None,
                force: bool = False) -> Path:
    """`model`: a store name, HF folder or GGUF file; `adapter`: a PEFT LoRA folder to fold in first."""
    if qtype not in QTYPES:
        raise InvalidRequestError("qtype", f"unknown type {qtype!r}; choose {', '.join(QTYPES)}")
    out = Path(out_file).expanduser()
    check_destination(out, force, [], folder=False)
    source = open_source(model, adapter)
    check_destination(out, force, source.inputs, folder=False)
    check_exportable(source)
    kind, file_type = QTYPES[qtype]
    plan = [(name, shape, tensor_type(name, shape, kind)) for name, shape in
            expected_shapes(source.checkpoint.config).items()]
    reader = read_gguf(source.checkpoint.path)[0] if source.checkpoint.format == "gguf" else None
    with staged_file(out) as tmp:
        writer = GGUFWriter(tmp, ARCHES[source.checkpoint.config.architecture])
        try:
            write_model_metadata(writer, source, file_type, reader)
            if reader is not None:
                copy_vocab(writer, reader)
            else:
                write_hf_vocab(writer, source.checkpoint.path, source.checkpoint.config.vocab_size,
                               source.checkpoint.generation.eos_token_ids)
            for name, shape, t in plan:
                writer.add_tensor_info(name, shape, np.dtype(np.float32), nbytes(shape, t), raw_dtype=t)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            for name, _, t in plan:
                writer.write_tensor_data(encode(gguf_tensor(source, name), t))
        finally:
            writer.close()
    return out


def tensor_type(name: str, shape: tuple[int, ...], kind: T) -> T:
    if len(shape) == 1 or name.endswith(KEEP_F32):
        return T.F32
    if kind == T.Q4_0 and name in MORE_BITS:
        kind = T.Q8_0
    return kind if shape[-1] % GGML_QUANT_SIZES[kind][0] == 0 else T.F16


def nbytes(shape: tuple[int, ...], kind: T) -> int:
    block, size = GGML_QUANT_SIZES[kind]
    return prod(shape) // block * size


def encode(array: np.ndarray, kind: T) -> np.ndarray:
    if kind == T.F32:
        return np.ascontiguousarray(array, dtype=np.float32)
    if kind == T.F16:
        return array.astype(np.float16)
    return quants.quantize(array, kind)


def gguf_tensor(source: MergedSource, name: str) -> np.ndarray:
    """One GGUF tensor in numpy (out, in) order from the merged HF tensors: experts stacked, and llama's q/k
    rows permuted the way convert_hf_to_gguf.py does for its interleaved rope."""
    cfg = source.checkpoint.config
    parts = [source.tensor(hf).numpy() for hf, _ in hf_names(name, cfg.num_experts)]
    array = parts[0] if len(parts) == 1 else np.stack(parts)
    if cfg.architecture == "llama" and name.endswith(("attn_q.weight", "attn_q.bias")):
        array = permute(array, cfg.num_attention_heads)
    elif cfg.architecture == "llama" and name.endswith(("attn_k.weight", "attn_k.bias")):
        array = permute(array, cfg.num_key_value_heads)
    return array


def permute(w: np.ndarray, heads: int) -> np.ndarray:
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
