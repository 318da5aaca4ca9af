"""Hugging Face folders: config.json, single or sharded safetensors, tokenizer and generation config."""
import json
from pathlib import Path

import torch
from safetensors import safe_open

from qwenkit.config import ModelConfig
from qwenkit.errors import ModelLoadError
from qwenkit.loading.checkpoint import Checkpoint, GenerationDefaults
from qwenkit.loading.safetensors_file import SafetensorsTensors
from qwenkit.tokenizer import Tokenizer


def load_hf_folder(path: Path) -> Checkpoint:
    path = Path(path)
    config_raw = read_json(path / "config.json")
    config = ModelConfig.from_hf(config_raw, str(path / "config.json"))
    tensors = SafetensorsTensors(safetensors_files(path))
    if any(k.endswith("mlp.experts.gate_up_proj") for k in tensors):
        tensors = _unfuse_experts(dict(tensors), config)
    tokenizer = Tokenizer.from_hf_folder(path)
    generation = read_generation_config(path, tokenizer)
    dtype = str(config_raw.get("torch_dtype") or config_raw.get("dtype") or
                tensors[next(iter(tensors))].dtype).replace("torch.", "")
    return Checkpoint(path, "hf", config, tensors, tokenizer, generation, dtype)


def read_json(file: Path) -> dict:
    if not file.is_file():
        raise ModelLoadError(file, "file not found", "a Hugging Face model folder needs it")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelLoadError(file, f"not valid JSON ({e})", "re-download the file") from None


def safetensors_files(path: Path) -> list[Path]:
    index = path / "model.safetensors.index.json"
    if index.is_file():
        weight_map = read_json(index).get("weight_map")
        if not isinstance(weight_map, dict):
            raise ModelLoadError(index, "no 'weight_map' object", "re-download the index file")
        files = [path / name for name in sorted(set(weight_map.values()))]
        for f in files:
            if not f.is_file():
                raise ModelLoadError(f, "shard listed in model.safetensors.index.json is missing",
                                     "re-download the model")
        return files
    files = sorted(path.glob("*.safetensors"))
    if not files:
        if any(path.glob("*.bin")) or any(path.glob("*.pt")):
            raise ModelLoadError(path, "only pickle weights (.bin/.pt) found",
                                 "qwenkit never unpickles weights; convert them to safetensors")
        raise ModelLoadError(path, "no .safetensors weights found", "is this a Hugging Face model folder?")
    return files


def read_safetensors(file: Path) -> dict[str, torch.Tensor]:
    """Memory-mapped read; a truncated or corrupt file raises an error naming it."""
    try:
        with safe_open(file, framework="pt") as f:
            return {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except Exception as e:  # safetensors raises SafetensorError, OSError or RuntimeError
        raise ModelLoadError(file, f"cannot read safetensors ({e})",
                             "the file is truncated or corrupt; re-download it") from None


def read_generation_config(path: Path, tokenizer: Tokenizer) -> GenerationDefaults:
    raw = read_json(path / "generation_config.json") if (path / "generation_config.json").is_file() else {}
    eos = raw.get("eos_token_id")
    eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
    for i in tokenizer.eos_token_ids:
        if i not in eos_ids:
            eos_ids.append(i)
    keys = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "presence_penalty")
    sampling = {k: raw[k] for k in keys if raw.get(k) is not None}
    if raw.get("do_sample") is False:
        sampling = {"temperature": 0.0}
    return GenerationDefaults(eos_token_ids=eos_ids, **sampling)


def _unfuse_experts(tensors: dict[str, torch.Tensor], config: ModelConfig) -> dict[str, torch.Tensor]:
    """transformers 5 may store Qwen3-MoE experts fused as `experts.gate_up_proj` [E, 2I, H] / `down_proj` [E, H, I]."""
    fused = [k for k in tensors if k.endswith("mlp.experts.gate_up_proj")]
    for key in fused:
        prefix = key[: -len("gate_up_proj")]
        gate_up, down = tensors.pop(key), tensors.pop(prefix + "down_proj")
        size = gate_up.shape[1] // 2
        for e in range(gate_up.shape[0]):
            tensors[f"{prefix}{e}.gate_proj.weight"] = gate_up[e, :size]
            tensors[f"{prefix}{e}.up_proj.weight"] = gate_up[e, size:]
            tensors[f"{prefix}{e}.down_proj.weight"] = down[e]
    return tensors
