"""`export_gguf` / `qwenkit export`: llama.cpp-style GGUF files with the adapter folded in, which load back to
the merged model: the same greedy tokens at f16, close at q8_0 and q4_0."""
from pathlib import Path

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType, GGUFReader, quants
from typer.testing import CliRunner

from qwenkit.cli.main import app
from qwenkit.errors import InvalidRequestError, ModelLoadError
from qwenkit.export import export_gguf
from qwenkit.export.source import open_source
from qwenkit.loading import load_checkpoint
from qwenkit.loading.gguf_file import read_gguf
from qwenkit.models import load_model
from qwenkit.tune.adapter import lora_state
from qwenkit.tune.lora import LoraConfig
from qwenkit.tune.merge import merge_adapter
from qwenkit.tune.peft_format import write_adapter
from tests.cli.test_run_show import assert_ok, assert_one_line_error
from tests.gguf_writer import permute
from tests.tune.lora_helpers import greedy, lora_model, write_random_adapter

IDS = torch.arange(3000, 3040)
F32 = GGMLQuantizationType.F32


@pytest.fixture(scope="module")
def exports(tiny_models, tmp_path_factory):
    """(arch, qtype, smooth) -> (base folder, adapter, merged HF folder, GGUF file), built once per module.
    Smooth models (weights at std 0.02, like trained ones) for the quantized types: the wide random test
    models amplify rounding chaotically."""
    cache = {}

    def get(arch: str, qtype: str, smooth: bool = False):
        key = (arch, qtype, smooth)
        if key not in cache:
            root = tmp_path_factory.mktemp(f"export-{arch}-{qtype}")
            if smooth or arch == "qwen3_moe":
                base = build(arch, root / "base", std=0.02 if smooth else 0.3)
            else:
                base = tiny_models(arch)[0]
            adapter = write_random_adapter(base, root / "adapter", std=0.05 if smooth else 0.2)
            merged = merge_adapter(str(base), adapter, root / "merged", dtype="f16" if qtype == "f16" else "f32")
            cache[key] = base, adapter, merged, export_gguf(str(base), root / "model.gguf", qtype, adapter=adapter)
        return cache[key]
    return get


def build(arch: str, folder: Path, std: float) -> Path:
    """The shared tiny Qwen3-MoE has a dense layer, which GGUF's qwen3moe cannot express: make all layers MoE."""
    import tests.conftest as conftest
    config = conftest.tiny_config(arch)
    if arch == "qwen3_moe":
        config.mlp_only_layers = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conftest, "tiny_config", lambda _: config)
        conftest.build_tiny_model(arch, folder, std=std)
    return folder


@pytest.mark.parametrize("arch", ["qwen2", "llama", "qwen3_moe"])  # bias + tied head, q/k permutation, experts
def test_f16_export_gives_the_merged_models_greedy_tokens(exports, arch):
    base, _, merged, gguf = exports(arch, "f16")
    ck, reference = load_checkpoint(gguf), load_checkpoint(merged)
    assert ck.dtype == ("mixed (F16, F32)" if arch == "qwen3_moe" else "F16")  # the MoE router stays F32
    assert ck.format == "gguf" and ck.config == reference.config
    ours, theirs = load_model(ck), load_model(reference)
    torch.testing.assert_close(ours.logits(IDS), theirs.logits(IDS), atol=1e-2, rtol=1e-3)  # norms, router: f32
    tokens = greedy(theirs, reference.tokenizer)
    assert greedy(ours, ck.tokenizer) == tokens
    assert greedy(load_model(load_checkpoint(base)), reference.tokenizer) != tokens  # the adapter is in there


def test_llama_q_and_k_rows_are_permuted_like_llama_cpp(exports):
    """Checked against tests/gguf_writer.py (written from convert_hf_to_gguf.py), not against our own reader."""
    base, adapter, _, gguf = exports("llama", "f16")
    source = open_source(str(base), adapter)
    tensors = {t.name: t for t in GGUFReader(gguf).tensors}
    for name, hf, heads in [("blk.1.attn_q.weight", "model.layers.1.self_attn.q_proj.weight", 4),
                            ("blk.1.attn_k.weight", "model.layers.1.self_attn.k_proj.weight", 2),
                            ("blk.1.attn_v.weight", "model.layers.1.self_attn.v_proj.weight", 0)]:
        expected = source.tensor(hf).numpy()
        expected = permute(expected, heads) if heads else expected
        np.testing.assert_array_equal(tensors[name].data, expected.astype(np.float16))


@pytest.mark.parametrize(("qtype", "cosine"), [("q8_0", 0.999), ("q4_0", 0.95)])
def test_quantized_exports_stay_close(exports, qtype, cosine):
    base, adapter, merged, gguf = exports("qwen3", qtype, smooth=True)
    ck = load_checkpoint(gguf)
    assert ck.dtype == {"q8_0": "Q8_0", "q4_0": "mixed (Q4_0, Q8_0)"}[qtype]  # q4_0 keeps 8 bits for embd/output
    ours, reference = load_model(ck).logits(IDS), load_model(load_checkpoint(merged)).logits(IDS)
    assert torch.nn.functional.cosine_similarity(ours, reference, dim=-1).min() > cosine
    source = open_source(str(base), adapter)
    by_name = {t.name: t for t in GGUFReader(gguf).tensors}
    for name, hf in [("blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight"),
                     ("output.weight", "lm_head.weight"), ("blk.1.ffn_norm.weight",
                                                          "model.layers.1.post_attention_layernorm.weight")]:
        t, merged_weight = by_name[name], source.tensor(hf).numpy()
        expected = merged_weight if t.tensor_type == F32 else quants.dequantize(
            quants.quantize(merged_weight, t.tensor_type), t.tensor_type)
        np.testing.assert_array_equal(quants.dequantize(t.data, t.tensor_type), expected)
    if qtype == "q8_0":
        tokens = greedy(load_model(ck), ck.tokenizer)
        expected = greedy(load_model(load_checkpoint(merged)), ck.tokenizer)
        assert sum(a == b for a, b in zip(tokens, expected)) >= 28


def test_tokenizer_metadata_matches_llama_cpp(exports, shared_qwen):
    """Tokens, merges and the pre-tokenizer name as in llama.cpp's own Qwen2 vocabulary file."""
    _, _, merged, gguf = exports("qwen2", "f16")
    _, ours = read_gguf(gguf)
    _, reference = read_gguf(shared_qwen / "ggml-vocab-qwen2.gguf")
    assert (ours["tokenizer.ggml.model"], ours["tokenizer.ggml.pre"]) == ("gpt2", "qwen2")
    assert ours["tokenizer.ggml.tokens"][:151643] == reference["tokenizer.ggml.tokens"][:151643]
    assert ours["tokenizer.ggml.merges"] == reference["tokenizer.ggml.merges"]
    tokens, types = ours["tokenizer.ggml.tokens"], ours["tokenizer.ggml.token_type"]
    assert len(tokens) == len(types) == 151936  # one per embedding row
    assert [types[i] for i in (0, 151643, 151645, 151657, 151900)] == [1, 3, 3, 4, 5]
    assert tokens[151645] == "<|im_end|>" and tokens[151900] == "[PAD151900]"
    assert (ours["tokenizer.ggml.eos_token_id"], ours["tokenizer.ggml.padding_token_id"]) == (151645, 151643)
    assert ours["tokenizer.ggml.add_bos_token"] is False
    original = load_checkpoint(merged).tokenizer
    exported = load_checkpoint(gguf).tokenizer
    assert exported.chat_template == original.chat_template
    chat = [{"role": "user", "content": "Hello <think> 12345 café\n\n  x"}]
    assert exported.encode_chat(chat) == original.encode_chat(chat)
    assert exported.eos_token_ids == original.eos_token_ids


def test_gguf_source_keeps_its_tokenizer_and_names(smollm2_gguf, tmp_path):
    """SmolLM2 (llama arch, Q4_1): tokenizer and general.* metadata copied as stored; the adapter is folded in."""
    config = LoraConfig(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "o_proj"])
    live = lora_model(smollm2_gguf, config, std=0.3)
    write_adapter(tmp_path / "adapter", lora_state(live))
    out = export_gguf("smollm2:135m", tmp_path / "smol.gguf", "q8_0", adapter=tmp_path / "adapter")
    _, fields = read_gguf(out)
    _, source = read_gguf(smollm2_gguf)
    for key in [k for k in source if k.startswith(("tokenizer.", "general.")) and k != "general.file_type"]:
        assert fields[key] == source[key], key
    assert fields["general.file_type"] == 7 and fields["llama.rope.dimension_count"] == 64
    ck = load_checkpoint(out)
    ids = torch.tensor(ck.tokenizer.encode("The capital of France is Paris, and the capital of Germany is Berlin."))
    ours, expected = load_model(ck).logits(ids), live.logits(ids)
    base = load_model(load_checkpoint(smollm2_gguf)).logits(ids)
    assert torch.nn.functional.cosine_similarity(ours, expected, dim=-1).min() > 0.97  # q8_0 over Q4_1 weights
    assert (ours - expected).abs().mean() < 0.5 * (base - expected).abs().mean()  # closer to base + adapter
    assert (ours.argmax(-1) == expected.argmax(-1)).float().mean() >= 0.8


def test_export_errors(tiny_models, tmp_path):
    base, _ = tiny_models("qwen2")
    with pytest.raises(InvalidRequestError, match="qtype: unknown type 'q5_k'; choose f16, q8_0, q4_0"):
        export_gguf(str(base), tmp_path / "x.gguf", "q5_k")
    other = write_random_adapter(tiny_models("qwen3")[0], tmp_path / "qwen3-adapter")
    with pytest.raises(ModelLoadError, match="trained for a different model"):
        export_gguf(str(base), tmp_path / "x.gguf", adapter=other)
    (tmp_path / "x.gguf").write_bytes(b"old")
    with pytest.raises(InvalidRequestError, match="already exists; pass --force"):
        export_gguf(str(base), tmp_path / "x.gguf")
    with pytest.raises(InvalidRequestError, match="is a folder"):
        export_gguf(str(base), tmp_path)
    with pytest.raises(ModelLoadError, match="dense layers \\[1\\] among MoE layers cannot be written as GGUF"):
        export_gguf(str(tiny_models("qwen3_moe")[0]), tmp_path / "moe.gguf")
    assert (tmp_path / "x.gguf").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qwen3-adapter", "x.gguf"]  # nothing half-written


# -- the CLI ---------------------------------------------------------------------------------------------
def qwenkit(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_export(exports, tmp_path):
    base, adapter, merged, _ = exports("qwen2", "f16")
    out = tmp_path / "cli.gguf"
    result = qwenkit("export", base, "--adapter", adapter, "--format", "gguf", "--qtype", "f16", "--out", out)
    assert_ok(result)
    assert "wrote" in result.stderr and out.is_file()
    ck = load_checkpoint(out)
    assert greedy(load_model(ck), ck.tokenizer) == greedy(load_model(load_checkpoint(merged)), ck.tokenizer)
    assert_one_line_error(qwenkit("export", base, "--out", out), "already exists", "--force")


def test_cli_export_bad_inputs(tiny_models, tmp_path):
    base, _ = tiny_models("qwen2")
    out = ["--out", tmp_path / "x.gguf"]
    assert_one_line_error(qwenkit("export", base, *out, "--qtype", "q3"), "unknown type 'q3'")
    assert_one_line_error(qwenkit("export", base, *out, "--format", "onnx"), "unknown format 'onnx'")
    assert_one_line_error(qwenkit("export", base, *out, "--adapter", tmp_path / "missing"), "no such adapter folder")
    other = write_random_adapter(tiny_models("qwen3")[0], tmp_path / "qwen3-adapter")
    assert_one_line_error(qwenkit("export", base, *out, "--adapter", other), "different model")
    assert not Path(tmp_path / "x.gguf").exists()
