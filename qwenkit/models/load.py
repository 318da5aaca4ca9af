"""Load checkpoint tensors into a CausalLM built on the meta device, quantizing module by module.

Quantized loading never holds more than one full-precision matrix at a time, so peak memory stays
close to the quantized size. GGUF Q4_0/Q4_1 weights map onto the int4 kernel's layout exactly.
"""
import math

import torch
from torch import nn

from qwenkit.errors import InvalidRequestError, ModelLoadError
from qwenkit.layers.quant import Int4Linear, Int8Embedding, Int8Linear, RefinedHead, int4_group_size
from qwenkit.layers.rotary import rope_frequencies
from qwenkit.loading.checkpoint import Checkpoint
from qwenkit.models.decoder import CausalLM
from qwenkit.models.fuse import FUSED, fuse_projections
from qwenkit.models.malloc import returning_freed_memory

QUANT_MODES = ("none", "int8", "int4")
INT8_IN_INT4 = {"qkv_proj"}  # attention inputs are the most sensitive; like Q4_K_M, give them more bits
QUANTIZED_TABLES = {"model.embed_tokens.weight", "lm_head.weight"}
# Embedding and head are quantized in blocks of rows of about this many float32 bytes; the temporaries of a
# block are several times its size: a 151,936 x 1024 head in 4096-row blocks (16 MB) peaked 81 MB above its
# int4 result, in 512-row blocks (2 MB) 17 MB.
ROW_BLOCK_BYTES = 2 << 20


class _Source:
    """Checked, converted access to a checkpoint's tensors by model parameter name."""

    def __init__(self, checkpoint: Checkpoint, model: CausalLM, dtype: torch.dtype, device):
        self.checkpoint, self.dtype, self.device = checkpoint, dtype, device
        self.shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        if checkpoint.config.tie_word_embeddings:
            self.shapes.pop("lm_head.weight", None)
        missing = sorted(set(self.shapes) - set(checkpoint.tensors))
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise ModelLoadError(checkpoint.path, f"missing tensor {missing[0]!r}{more}",
                                 "the checkpoint is incomplete or not of this architecture")

    def raw(self, name: str) -> torch.Tensor:
        t = self.checkpoint.tensors[name]
        if tuple(t.shape) != self.shapes[name]:
            raise ModelLoadError(self.checkpoint.path, f"tensor {name!r} has shape {tuple(t.shape)}, "
                                 f"expected {self.shapes[name]}", "the config does not match the weights")
        return t

    def fetch(self, name: str) -> torch.Tensor:
        return self.raw(name).to(device=self.device, dtype=self.dtype)

    def row_blocks(self, name: str, block_bytes: int = ROW_BLOCK_BYTES):
        """The tensor in float32 blocks of rows, read from disk block by block where the format allows."""
        rows = getattr(self.checkpoint.tensors, "rows", None)
        whole = None if rows is not None else self.raw(name)
        n, width = self.shapes[name][0], math.prod(self.shapes[name][1:])
        block = max(64, block_bytes // (4 * width) // 64 * 64)  # the int4 packer takes whole tiles of 16 rows
        for i in range(0, n, block):
            yield (rows(name, i, i + block) if whole is None else whole[i:i + block]).float()

    def int4_parts(self, name: str):
        parts = getattr(self.checkpoint.tensors, "int4_parts", None)
        return parts(name) if parts is not None else None


def load_model(checkpoint: Checkpoint, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
               quant: str = "none", group_size: int = 32) -> CausalLM:
    if quant not in QUANT_MODES:
        raise InvalidRequestError("quant", f"unknown mode {quant!r}; choose {', '.join(QUANT_MODES)} or auto")
    if group_size not in (32, 64, 128):
        raise InvalidRequestError("group_size", "must be 32, 64 or 128")
    config = checkpoint.config
    with torch.device("meta"):
        model = CausalLM(config)
    source = _Source(checkpoint, model, dtype, device)
    if quant == "none":
        model.load_state_dict({name: source.fetch(name) for name in source.shapes}, strict=False, assign=True)
        model.tie_weights()
    else:
        with returning_freed_memory():
            _load_quantized(model, source, quant, group_size)
    model.inv_freq = rope_frequencies(config)[0].to(device)  # buffers were built on the meta device
    model.quant = quant
    return model.eval().requires_grad_(False)


def _load_quantized(model: CausalLM, source: _Source, mode: str, group_size: int) -> None:
    fuse_projections(model)
    for prefix, module in list(model.named_modules()):
        if isinstance(module, nn.Linear) and not prefix.endswith(".gate"):
            continue  # replaced through its parent below; the MoE router stays in float
        for name, child in list(module.named_children()):
            full = f"{prefix}.{name}" if prefix else name
            if isinstance(child, nn.Linear) and full != "lm_head" and name != "gate":
                setattr(module, name, _quantized(source, full, child, mode, group_size))
        for name, _ in list(module.named_parameters(recurse=False)):
            full = f"{prefix}.{name}" if prefix else name
            if full in source.shapes and full not in QUANTIZED_TABLES:  # those are replaced below
                setattr(module, name, nn.Parameter(source.fetch(full), requires_grad=False))
    embeddings = Int8Embedding(source.row_blocks("model.embed_tokens.weight"),
                               shape=source.shapes["model.embed_tokens.weight"])
    model.model.embed_tokens = embeddings
    tied = model.config.tie_word_embeddings
    head_rows = embeddings if tied else Int8Embedding(source.row_blocks("lm_head.weight"),
                                                      shape=source.shapes["lm_head.weight"])
    head_name = "model.embed_tokens.weight" if tied else "lm_head.weight"
    head = _quantized(source, head_name, None, mode, group_size, rows=head_rows)
    model.lm_head = RefinedHead(head, head_rows)


def _quantized(source: _Source, name: str, meta: nn.Linear | None, mode: str, group_size: int,
               rows: Int8Embedding | None = None) -> nn.Module:
    parts = FUSED.get(name.rsplit(".", 1)[-1])
    prefix = name.rsplit(".", 1)[0]
    names = [f"{prefix}.{p}.weight" for p in parts] if parts else [name if rows is not None else f"{name}.weight"]
    has_bias = meta is not None and meta.bias is not None
    bias = torch.cat([source.fetch(n.replace(".weight", ".bias")) for n in names]) if has_bias else None
    if mode == "int4":
        exact = [source.int4_parts(n) for n in names]
        if all(p is not None for p in exact):
            q, scale, zero = (torch.cat(xs) for xs in zip(*exact))
            return Int4Linear(q, scale, zero, 32, bias)
        if name.rsplit(".", 1)[-1] in INT8_IN_INT4:
            mode = "int8"
    if mode == "int8" and rows is not None:
        return Int8Linear.from_int8(rows.weight, rows.scale, bias)
    if mode == "int4" and rows is not None and int4_group_size(rows.weight.shape[1], group_size) is not None:
        return Int4Linear.from_row_chunks(source.row_blocks(names[0]), tuple(rows.weight.shape),
                                          int4_group_size(rows.weight.shape[1], group_size))
    weight = torch.cat([source.fetch(n) for n in names]) if len(names) > 1 else source.fetch(names[0])
    if mode == "int4":
        g = int4_group_size(weight.shape[1], group_size)
        if g is not None:
            return Int4Linear.from_float(weight, bias, g)
    return Int8Linear(weight, bias)
