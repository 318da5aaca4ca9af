"""Read and write LoRA adapters in Hugging Face PEFT's on-disk format.

A PEFT adapter folder holds `adapter_config.json` and `adapter_model.safetensors`, whose keys look like
`base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight` ([r, in]) and `...lora_B.weight` ([out, r]).
Module names are the Hugging Face ones (`model.layers.0.self_attn.q_proj`), which are qwenkit's too.
"""
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from qwenkit.errors import ModelLoadError

CONFIG_FILE, WEIGHTS_FILE = "adapter_config.json", "adapter_model.safetensors"
PREFIX = "base_model.model."


@dataclass(slots=True)
class AdapterFiles:
    """One adapter as stored: its LoRA hyper-parameters and, per module, the (A [r, in], B [out, r]) pair."""
    r: int
    alpha: float
    target_modules: list[str]
    base_model: str | None = None
    dropout: float = 0.0
    use_rslora: bool = False
    weights: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    @property
    def scale(self) -> float:
        return self.alpha / (self.r ** 0.5 if self.use_rslora else self.r)


def write_adapter(folder: str | Path, adapter: AdapterFiles) -> Path:
    """Write the adapter folder atomically per file (a temporary name, then rename)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": adapter.base_model,
        "r": adapter.r, "lora_alpha": adapter.alpha, "lora_dropout": adapter.dropout,
        "target_modules": sorted(adapter.target_modules), "bias": "none", "fan_in_fan_out": False,
        "use_rslora": adapter.use_rslora, "modules_to_save": None, "inference_mode": True,
        "init_lora_weights": True,
    }
    tensors = {}
    for module, (a, b) in adapter.weights.items():
        tensors[f"{PREFIX}{module}.lora_A.weight"] = a.detach().to("cpu", torch.float32).contiguous()
        tensors[f"{PREFIX}{module}.lora_B.weight"] = b.detach().to("cpu", torch.float32).contiguous()
    tmp = folder / (WEIGHTS_FILE + ".tmp")
    save_file(tensors, tmp, metadata={"format": "pt"})
    tmp.replace(folder / WEIGHTS_FILE)
    tmp = folder / (CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps(config, indent=2) + "\n")
    tmp.replace(folder / CONFIG_FILE)
    return folder


def read_adapter(folder: str | Path) -> AdapterFiles:
    """Read a PEFT LoRA adapter folder, with an actionable error for anything qwenkit cannot apply."""
    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    if not folder.is_dir():
        raise ModelLoadError(folder, "no such adapter folder", "pass the folder `qwenkit tune --out` wrote")
    if not config_path.is_file() or not weights_path.is_file():
        raise ModelLoadError(folder, f"not a PEFT adapter: needs {CONFIG_FILE} and {WEIGHTS_FILE}",
                             "pass the folder `qwenkit tune --out` or PEFT's save_pretrained wrote")
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelLoadError(config_path, f"invalid JSON ({e})", "restore the file from the adapter's source") from e
    if config.get("peft_type", "LORA") != "LORA":
        raise ModelLoadError(config_path, f"peft_type {config.get('peft_type')!r} is not supported",
                             "qwenkit applies LoRA adapters only")
    if config.get("use_dora") or config.get("modules_to_save") or config.get("bias", "none") != "none":
        raise ModelLoadError(config_path, "DoRA, modules_to_save and trained biases are not supported",
                             "train a plain LoRA adapter (bias='none')")
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise ModelLoadError(config_path, "per-module rank_pattern/alpha_pattern is not supported",
                             "use one rank and alpha for all modules")
    try:
        tensors = load_file(weights_path)
    except Exception as e:  # safetensors raises its own error types for damaged files
        raise ModelLoadError(weights_path, f"cannot read the weights ({e})", "the file is damaged; re-save it") from e
    adapter = AdapterFiles(r=int(config["r"]), alpha=float(config.get("lora_alpha", config["r"])),
                           target_modules=_targets(config.get("target_modules")),
                           base_model=config.get("base_model_name_or_path"),
                           dropout=float(config.get("lora_dropout", 0.0)),
                           use_rslora=bool(config.get("use_rslora", False)))
    for key, a in tensors.items():
        if not key.endswith(".lora_A.weight"):
            if not key.endswith(".lora_B.weight"):  # embedding LoRA, DoRA magnitudes, saved modules...
                raise ModelLoadError(weights_path, f"unexpected tensor {key!r}",
                                     "only LoRA A/B matrices of linear layers are supported")
            continue
        module = key.removesuffix(".lora_A.weight").removeprefix(PREFIX)
        b = tensors.get(key.replace(".lora_A.", ".lora_B."))
        if b is None:
            raise ModelLoadError(weights_path, f"{key!r} has no matching lora_B", "the adapter file is incomplete")
        if a.shape[0] != b.shape[1]:
            raise ModelLoadError(weights_path, f"{module}: A is {tuple(a.shape)} but B is {tuple(b.shape)}",
                                 "the adapter file is damaged")
        adapter.weights[module] = (a, b)
    if not adapter.weights:
        raise ModelLoadError(weights_path, "no LoRA weights inside", "the adapter file is empty or damaged")
    return adapter


def _targets(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    return list(value or [])
