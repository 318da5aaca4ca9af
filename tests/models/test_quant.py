"""Weight-only int8/int4: close to full precision, exact for GGUF 4-bit blocks, chosen by `auto`."""
import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType, quants

from qwenkit import LLM, InvalidRequestError
from qwenkit.layers.quant import Int4Linear, Int8Linear
from qwenkit.loading import load_checkpoint
from qwenkit.loading.gguf_tensors import q4_blocks
from qwenkit.models import load_model


@pytest.fixture(scope="module")
def smooth_models(tmp_path_factory):
    """Weights at std 0.02 (a trained model's scale): the wide test models amplify any rounding chaotically."""
    from tests.conftest import build_tiny_model
    cache = {}

    def get(arch):
        if arch not in cache:
            cache[arch] = tmp_path_factory.mktemp(f"smooth-{arch}")
            build_tiny_model(arch, cache[arch], std=0.02)
        return cache[arch]
    return get


def _cosine(folder, quant):
    ck = load_checkpoint(folder)
    ids = torch.arange(1000, 1064)
    full = load_model(ck).logits(ids)
    return torch.nn.functional.cosine_similarity(load_model(ck, quant=quant).logits(ids), full, dim=-1).min()


@pytest.mark.parametrize("arch", ["qwen2", "qwen3", "qwen3_moe", "llama"])
def test_int8_and_int4_logits_close_to_fp32(smooth_models, arch):
    folder = smooth_models(arch)
    assert _cosine(folder, "int8") >= 0.999
    assert _cosine(folder, "int4") >= 0.99


def test_quantized_modules_replace_every_linear(tiny_models):
    model = load_model(load_checkpoint(tiny_models("qwen2")[0]), quant="int4")
    kinds = {type(m).__name__ for m in model.modules()}
    assert "Linear" not in kinds and "Int4Linear" in kinds
    attn = model.model.layers[0].self_attn
    assert isinstance(attn.qkv_proj, Int8Linear) and attn.qkv_proj.bias is not None  # int8 q/k/v, bias kept
    assert isinstance(model.model.layers[0].mlp.gate_up_proj, Int4Linear)


@pytest.mark.parametrize("kind", [GGMLQuantizationType.Q4_0, GGMLQuantizationType.Q4_1])
def test_gguf_q4_blocks_map_exactly_onto_int4(kind):
    w = np.random.default_rng(0).standard_normal((16, 128)).astype(np.float32)
    data = quants.quantize(w, kind)
    q, scale, zero = q4_blocks(data, kind, (16, 128))
    linear = Int4Linear(q, scale, zero, 32, None)
    x = torch.randn(3, 128)
    expected = x.bfloat16().float() @ torch.from_numpy(quants.dequantize(data, kind)).T
    torch.testing.assert_close(linear(x), expected, atol=0.05, rtol=0.02)  # bf16 kernel output


def test_int8_linear_matches_its_dequantized_weight():
    w, x = torch.randn(48, 64), torch.randn(5, 64)
    linear = Int8Linear(w, torch.randn(48))
    torch.testing.assert_close(linear(x), x.bfloat16().float() @ linear.dequantize().T + linear.bias.float(),
                               atol=0.05, rtol=0.02)


def test_embedded_model_auto_is_exact_int4_and_answers(smollm2_gguf):
    llm = LLM(str(smollm2_gguf))
    assert llm.quant == "int4"
    from qwenkit import SamplingParams
    out = llm.chat([{"role": "user", "content": "What is the capital of France?"}],
                   SamplingParams(temperature=0, max_tokens=32))[0].outputs[0]
    assert "Paris" in out.text and out.finish_reason == "stop"


def test_unknown_quant_mode_names_the_field(tiny_models):
    with pytest.raises(InvalidRequestError, match="quant"):
        load_model(load_checkpoint(tiny_models("qwen2")[0]), quant="int3")


@pytest.mark.parametrize("kind", ["int8", "int4"])
def test_densified_linear_uses_bf16_copy_only_for_many_rows(kind):
    from qwenkit.layers.quant import DENSE_MIN_ROWS, densify
    torch.manual_seed(0)
    w = torch.randn(96, 64) * 0.02
    linear = Int8Linear(w, None) if kind == "int8" else Int4Linear.from_float(w, None, 32)
    one, many = torch.randn(1, 64), torch.randn(DENSE_MIN_ROWS, 64)
    packed_one, packed_many = linear(one), linear(many)
    assert densify(linear) == 96 * 64 * 2
    assert torch.equal(linear(one), packed_one)            # single-stream decode keeps the packed kernel
    dense = linear(many)
    assert not torch.equal(dense, packed_many)
    reference = many @ linear.dequantize().T
    assert (dense - reference).abs().max() < 2e-2 * reference.abs().max()
    assert densify(linear) == 0                              # idempotent


def test_int8_embedding_from_a_whole_table_or_row_blocks_agree():
    from qwenkit.layers.quant import Int8Embedding
    table = torch.randn(50, 16)
    whole = Int8Embedding(table, chunk=16)   # several chunks of a table held in memory
    blocks = Int8Embedding((table[i:i + 20] for i in range(0, 50, 20)), shape=(50, 16))
    ids = torch.tensor([0, 17, 49])
    torch.testing.assert_close(whole(ids), blocks(ids))
    torch.testing.assert_close(whole(ids), table[ids], atol=table.abs().max().item() / 127, rtol=0)
