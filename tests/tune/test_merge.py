"""`merge_adapter` / `qwenkit merge`: a standalone HF folder that qwenkit and transformers load to the model
with the adapter applied, written whole or not at all."""
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from qwenkit.cli.main import app
from qwenkit.errors import InvalidRequestError, ModelLoadError
from qwenkit.loading import load_checkpoint
from qwenkit.models import load_model
from qwenkit.tune.adapter import load_lora
from qwenkit.tune.merge import merge_adapter
from qwenkit.tune.peft_format import read_adapter
from tests.cli.test_run_show import assert_ok, assert_one_line_error
from tests.tune.lora_helpers import greedy, write_random_adapter

IDS = torch.arange(2000, 2040)


def live_logits(base, adapter) -> torch.Tensor:
    model = load_model(load_checkpoint(base))
    load_lora(model, read_adapter(adapter))
    return model.logits(IDS)


def transformers_logits(folder) -> torch.Tensor:
    import transformers
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.no_grad():
        return model(IDS[None]).logits[0]


@pytest.mark.parametrize("arch", ["qwen2", "qwen3_moe"])  # tied head + q/k/v bias; MoE with a dense layer
def test_merged_folder_loads_in_qwenkit_and_transformers(tiny_models, tmp_path, arch):
    import transformers
    base, _ = tiny_models(arch)
    adapter = write_random_adapter(base, tmp_path / "adapter")
    out = merge_adapter(str(base), adapter, tmp_path / "merged", dtype="f32")
    expected = live_logits(base, adapter)
    assert (expected - load_model(load_checkpoint(base)).logits(IDS)).abs().max() > 0.1
    merged = load_checkpoint(out)
    torch.testing.assert_close(load_model(merged).logits(IDS), expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(transformers_logits(out), expected, atol=1e-4, rtol=1e-4)
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == [{"qwen2": "Qwen2ForCausalLM", "qwen3_moe": "Qwen3MoeForCausalLM"}[arch]]
    assert config["torch_dtype"] == "float32" and merged.config == load_checkpoint(base).config
    original = load_checkpoint(base)
    assert merged.tokenizer.chat_template == original.tokenizer.chat_template
    assert merged.generation.eos_token_ids == original.generation.eos_token_ids
    text = "Hi <|im_start|>user\nhello, 123 café<|im_end|>"
    assert transformers.AutoTokenizer.from_pretrained(out).encode(text) == merged.tokenizer.encode(text, True)


def test_merged_and_unmerged_give_the_same_greedy_tokens(tiny_models, tmp_path):
    base, _ = tiny_models("qwen3")
    adapter = write_random_adapter(base, tmp_path / "adapter")
    ck = load_checkpoint(base)
    live = load_model(ck)
    load_lora(live, read_adapter(adapter))
    out = merge_adapter(str(base), adapter, tmp_path / "merged", dtype="f32")
    tokens = greedy(live, ck.tokenizer)
    assert len(tokens) == 32
    assert greedy(load_model(load_checkpoint(out)), ck.tokenizer) == tokens
    assert greedy(load_model(ck), ck.tokenizer) != tokens  # the adapter changes what the model says


def test_merge_from_a_quantized_gguf(smollm2_gguf, tmp_path):
    """SmolLM2 (llama arch, Q4_1 GGUF): the weights are dequantized, the GGUF tokenizer becomes tokenizer.json."""
    import transformers
    adapter = write_random_adapter(smollm2_gguf, tmp_path / "adapter", std=0.02, target_modules=["q_proj", "v_proj"])
    out = merge_adapter("smollm2:135m", adapter, tmp_path / "merged")  # bf16
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "generation_config.json", "model.safetensors",
                                                       "tokenizer.json", "tokenizer_config.json"]
    merged = load_checkpoint(out)
    ours = load_model(merged).logits(IDS)
    torch.testing.assert_close(transformers_logits(out), ours, atol=1e-4, rtol=1e-4)
    live = live_logits(smollm2_gguf, adapter)
    assert torch.nn.functional.cosine_similarity(ours, live, dim=-1).min() > 0.999  # bf16 rounding only
    original = load_checkpoint(smollm2_gguf).tokenizer
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    assert tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False) == original.render_chat(chat)
    assert merged.tokenizer.encode_chat(chat) == original.encode_chat(chat)
    assert merged.generation.eos_token_ids == load_checkpoint(smollm2_gguf).generation.eos_token_ids


def test_output_folder_rules(tiny_models, tmp_path, monkeypatch):
    base, _ = tiny_models("qwen2")
    adapter = write_random_adapter(base, tmp_path / "adapter")
    out = tmp_path / "merged"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(InvalidRequestError, match="not empty; pass --force"):
        merge_adapter(str(base), adapter, out)
    with pytest.raises(InvalidRequestError, match="overlaps the input"):
        merge_adapter(str(base), adapter, base / "merged", force=True)

    from qwenkit.export import hf_folder

    def broken(*args):
        raise OSError("disk full")
    monkeypatch.setattr(hf_folder, "write_tokenizer", broken)
    with pytest.raises(OSError, match="disk full"):
        merge_adapter(str(base), adapter, out, force=True)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]  # the old folder is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter", "merged"]  # no half-written folder left
    monkeypatch.undo()
    merge_adapter(str(base), adapter, out, force=True)
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").is_file()


def test_big_models_are_sharded(tiny_models, tmp_path, monkeypatch):
    from qwenkit.export import hf_folder
    monkeypatch.setattr(hf_folder, "SHARD_BYTES", 20 << 20)
    base, _ = tiny_models("qwen3")  # untied: two 38 MB tables
    out = merge_adapter(str(base), write_random_adapter(base, tmp_path / "adapter"), tmp_path / "merged", "f32")
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert sorted(set(index["weight_map"].values())) == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    assert not (out / "model.safetensors").exists()
    torch.testing.assert_close(transformers_logits(out), live_logits(base, tmp_path / "adapter"), atol=1e-4,
                               rtol=1e-4)


def test_merge_errors(tiny_models, tmp_path):
    qwen2, _ = tiny_models("qwen2")
    other = write_random_adapter(tiny_models("qwen3")[0], tmp_path / "qwen3-adapter")
    with pytest.raises(ModelLoadError, match="k_proj: the adapter has A \\[4, 64\\] and B \\[64, 4\\], but the weight "
                       "of .* is \\[32, 64\\] \\(the adapter was trained for a different model"):
        merge_adapter(str(qwen2), other, tmp_path / "out")
    with pytest.raises(ModelLoadError, match="no such adapter folder"):
        merge_adapter(str(qwen2), tmp_path / "missing", tmp_path / "out")
    with pytest.raises(InvalidRequestError, match="dtype: unknown dtype 'fp8'"):
        merge_adapter(str(qwen2), other, tmp_path / "out", dtype="fp8")
    assert not (tmp_path / "out").exists()


# -- the CLI ---------------------------------------------------------------------------------------------
def qwenkit(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_merge(tiny_models, tmp_path):
    base, _ = tiny_models("qwen2")
    adapter = write_random_adapter(base, tmp_path / "adapter")
    result = qwenkit("merge", base, "--adapter", adapter, "--out", tmp_path / "merged", "--dtype", "f16")
    assert_ok(result)
    assert f"wrote {tmp_path / 'merged'}" in result.stderr.replace("\n", "")
    assert json.loads((tmp_path / "merged" / "config.json").read_text())["torch_dtype"] == "float16"
    assert_one_line_error(qwenkit("merge", base, "--adapter", adapter, "--out", tmp_path / "merged"),
                          "is not empty", "--force")
    assert_ok(qwenkit("merge", base, "--adapter", adapter, "--out", tmp_path / "merged", "--force"))


def test_cli_merge_bad_inputs(tiny_models, tmp_path):
    base, _ = tiny_models("qwen2")
    other = write_random_adapter(tiny_models("qwen3")[0], tmp_path / "qwen3-adapter")
    out = ["--out", tmp_path / "merged"]
    assert_one_line_error(qwenkit("merge", base, "--adapter", tmp_path / "nope", *out), "no such adapter folder")
    assert_one_line_error(qwenkit("merge", base, "--adapter", other, *out), "different model")
    assert_one_line_error(qwenkit("merge", base, "--adapter", other, *out, "--dtype", "int3"), "unknown dtype")
    assert_one_line_error(qwenkit("merge", Path(tmp_path / "no-model"), "--adapter", other, *out))
    assert not (tmp_path / "merged").exists()
