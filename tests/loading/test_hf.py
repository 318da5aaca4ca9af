"""Hugging Face folders: sharded weights, generation config, and one clear error per bad file."""
import json
import shutil

import pytest
import torch

from qwenkit import LLM
from qwenkit.errors import ModelLoadError
from qwenkit.loading import load_checkpoint
from qwenkit.models import load_model


@pytest.fixture(scope="module")
def qwen2(tiny_models):
    return tiny_models("qwen2")


def _copy(folder, tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(folder, dst)
    return dst


def test_sharded_safetensors_load_identically(qwen2, tmp_path):
    folder, ref = qwen2
    sharded = tmp_path / "sharded"
    ref.save_pretrained(sharded, max_shard_size="5MB")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(folder / name, sharded / name)
    assert (sharded / "model.safetensors.index.json").is_file()
    assert len(list(sharded.glob("*.safetensors"))) > 1
    ids = torch.arange(10, 30)
    a = load_model(load_checkpoint(sharded)).logits(ids)
    b = load_model(load_checkpoint(folder)).logits(ids)
    assert torch.equal(a, b)


def test_generation_config_sets_eos_and_sampling_defaults(qwen2, tmp_path):
    folder = _copy(qwen2[0], tmp_path)
    (folder / "generation_config.json").write_text(json.dumps(
        {"eos_token_id": [151645, 151643], "temperature": 0.7, "top_p": 0.8, "top_k": 20,
         "repetition_penalty": 1.05, "do_sample": True}))
    llm = LLM(str(folder), quant="none")
    params = llm.get_default_sampling_params()
    assert (params.temperature, params.top_p, params.top_k, params.repetition_penalty) == (0.7, 0.8, 20, 1.05)
    assert {151645, 151643} <= set(llm.generator.eos_token_ids)


def _expect(folder, *needles):
    with pytest.raises(ModelLoadError) as info:
        load_model(load_checkpoint(folder))
    message = str(info.value)
    for needle in needles:
        assert needle in message, message
    return message


def test_missing_config(qwen2, tmp_path):
    folder = _copy(qwen2[0], tmp_path)
    (folder / "config.json").unlink()
    _expect(folder, "config.json", "not found")


def test_corrupt_config(qwen2, tmp_path):
    folder = _copy(qwen2[0], tmp_path)
    (folder / "config.json").write_text("{ not json")
    _expect(folder, "config.json", "not valid JSON")


def test_unknown_architecture(qwen2, tmp_path):
    folder = _copy(qwen2[0], tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["architectures"], config["model_type"] = ["GPT2LMHeadModel"], "gpt2"
    (folder / "config.json").write_text(json.dumps(config))
    _expect(folder, "config.json", "unsupported architecture", "GPT2LMHeadModel")


def test_truncated_safetensors(qwen2, tmp_path):
    folder = _copy(qwen2[0], tmp_path)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    _expect(folder, "model.safetensors", "truncated or corrupt")


def test_pickle_weights_are_refused(qwen2, tmp_path):
    folder = _copy(qwen2[0], tmp_path)
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not loaded")
    _expect(folder, "pickle", "safetensors")


def test_missing_tensor_and_shape_mismatch(qwen2, tmp_path):
    from safetensors.torch import load_file, save_file
    folder = _copy(qwen2[0], tmp_path)
    tensors = load_file(folder / "model.safetensors")
    tensors.pop("model.layers.1.mlp.down_proj.weight")
    save_file(tensors, folder / "model.safetensors")
    _expect(folder, "model.layers.1.mlp.down_proj.weight", "missing")
    tensors["model.layers.1.mlp.down_proj.weight"] = torch.zeros(3, 3)
    save_file(tensors, folder / "model.safetensors")
    _expect(folder, "model.layers.1.mlp.down_proj.weight", "shape (3, 3)", "expected (64, 128)")


def test_missing_shard(qwen2, tmp_path):
    folder, ref = qwen2
    sharded = tmp_path / "sharded"
    ref.save_pretrained(sharded, max_shard_size="5MB")
    shutil.copy(folder / "tokenizer.json", sharded / "tokenizer.json")
    next(iter(sorted(sharded.glob("*-of-*.safetensors")))).unlink()
    _expect(sharded, "missing", "re-download")
