"""Quantized loading streams: embedding and head quantized a block of rows at a time equal the same weights
quantized whole, no float table is ever held whole, and building the model on the meta device leaves torch's
Python kernels (dynamo, sympy: 145 MB that a process keeps) unloaded."""
import subprocess
import sys
import tracemalloc
from functools import partial

import pytest
import torch

from qwenkit.layers.quant import Int4Linear, Int8Embedding, Int8Linear, RefinedHead, quantize_int8
from qwenkit.loading import load_checkpoint
from qwenkit.models import load_model

TABLE = "model.embed_tokens.weight"


def test_int4_from_row_chunks_equals_whole_matrix():
    torch.manual_seed(0)
    w = torch.randn(304, 128) * 0.02
    whole = Int4Linear.from_float(w, None, 32)
    chunked = Int4Linear.from_row_chunks((w[i:i + 64] for i in range(0, 304, 64)), (304, 128), 32)  # last: 48
    assert torch.equal(chunked.weight, whole.weight)
    assert torch.equal(chunked.scales_zeros, whole.scales_zeros)
    x = torch.randn(3, 128)
    assert torch.equal(chunked(x), whole(x))


def _whole_matrix_reference(model, checkpoint, quant: str):
    """The streamed model with embedding and head replaced by quantizations of the whole float matrices."""
    table = checkpoint.tensors[TABLE].float()
    head = table if checkpoint.config.tie_word_embeddings else checkpoint.tensors["lm_head.weight"].float()
    embeddings = Int8Embedding(table, chunk=len(table))
    rows = embeddings if head is table else Int8Embedding(head, chunk=len(head))
    packed = Int4Linear.from_float(head, None, 32) if quant == "int4" else Int8Linear(head, None)
    model.model.embed_tokens, model.lm_head = embeddings, RefinedHead(packed, rows)
    return model


@pytest.mark.parametrize("quant", ["int8", "int4"])
@pytest.mark.parametrize("arch", ["qwen2", "qwen3"])  # tied and untied head
def test_streamed_tables_equal_whole_matrix_quantization(tiny_models, arch, quant):
    checkpoint = load_checkpoint(tiny_models(arch)[0])
    rows = checkpoint.tensors.shape(TABLE)[0]
    assert rows > 8192  # 151,936 x 64: several 2 MB blocks and a ragged last one
    streamed = load_model(checkpoint, quant=quant)
    reference = _whole_matrix_reference(load_model(checkpoint, quant=quant), checkpoint, quant)
    q, scale = quantize_int8(checkpoint.tensors[TABLE])
    assert torch.equal(streamed.model.embed_tokens.weight, q)
    assert torch.equal(streamed.model.embed_tokens.scale, scale)
    for got, want in zip(streamed.lm_head.packed.buffers(), reference.lm_head.packed.buffers()):
        assert torch.equal(got, want)
    ids = torch.tensor([0, 17, 1000, 151_000, 42, rows - 1])
    assert torch.equal(streamed.logits(ids), reference.logits(ids))


def _traced_peak(load) -> int:
    tracemalloc.start()
    try:
        load()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_quantized_load_never_holds_a_float_table(tiny_models):
    """Safetensors tensors are read into Python buffers, which tracemalloc counts; a float32 checkpoint loaded
    as float32 uses them in place, so the traced peak is the float weights held at one time."""
    checkpoint = load_checkpoint(tiny_models("qwen3")[0])
    assert checkpoint.tensors.rows(TABLE, 0, 1).dtype == torch.float32  # else reads are converted and freed
    table_bytes = 4 * checkpoint.tensors.shape(TABLE)[0] * checkpoint.tensors.shape(TABLE)[1]
    assert _traced_peak(partial(load_model, checkpoint)) > 2 * table_bytes  # float: embedding and head, at least
    for quant in ("int8", "int4"):
        assert _traced_peak(partial(load_model, checkpoint, quant=quant)) < table_bytes / 4, quant


@pytest.mark.parametrize("quant", ["none", "int4"])
def test_loading_imports_no_dynamo(tiny_models, quant):
    folder = tiny_models("qwen2")[0]
    code = ("import sys, torch\n"
            "from qwenkit.loading import load_checkpoint\n"
            "from qwenkit.models import load_model\n"
            f"model = load_model(load_checkpoint({str(folder)!r}), quant={quant!r})\n"
            "model.logits(torch.arange(5))\n"
            "print(sorted(m for m in ('sympy', 'torch._dynamo') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
