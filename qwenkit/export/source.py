"""A base checkpoint with LoRA adapters folded in, read one tensor at a time so the whole model never sits
in memory in float32."""
from dataclasses import dataclass, field
from pathlib import Path

import torch

from qwenkit.errors import ModelLoadError
from qwenkit.loading import Checkpoint, load_checkpoint
from qwenkit.models.decoder import CausalLM
from qwenkit.tune.lora import lora_delta
from qwenkit.tune.peft_format import AdapterFiles, read_adapter

OTHER_BASE = "the adapter was trained for a different model; pass the base model it was trained on"


@dataclass(slots=True)
class MergedSource:
    checkpoint: Checkpoint
    shapes: dict[str, tuple[int, ...]]  # every tensor the model has, by HF name (no lm_head when tied)
    name: str                           # what the user called the model
    adapters: list[AdapterFiles] = field(default_factory=list)
    inputs: list[Path] = field(default_factory=list)  # the files and folders read, never to be overwritten

    def tensor(self, name: str) -> torch.Tensor:
        """The float32 tensor with every adapter's B @ A * scale added."""
        t = self.checkpoint.tensors[name].float()
        module = name.removesuffix(".weight")
        for adapter in self.adapters:
            if module in adapter.weights:
                t = t + lora_delta(*adapter.weights[module], adapter.scale)
        return t


def open_source(model: str | Path, adapter: str | Path | None = None) -> MergedSource:
    """`model`: a store name, HF folder or GGUF file. A stored model that carries an adapter gets it first,
    then `adapter`."""
    from qwenkit.store import resolve
    resolved = resolve(str(model))
    checkpoint = load_checkpoint(resolved.path)
    folders = [f for f in (resolved.adapter, adapter) if f is not None]
    source = MergedSource(checkpoint, model_shapes(checkpoint), str(model),
                          inputs=[Path(resolved.path), *map(Path, folders)])
    for folder in folders:
        files = read_adapter(folder)
        check_adapter(files, source, str(folder))
        source.adapters.append(files)
    return source


def model_shapes(checkpoint: Checkpoint) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        model = CausalLM(checkpoint.config)
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    if checkpoint.config.tie_word_embeddings:
        shapes.pop("lm_head.weight", None)
    return shapes


def check_adapter(adapter: AdapterFiles, source: MergedSource, where: str) -> None:
    for module, (a, b) in adapter.weights.items():
        if module == "lm_head" and source.checkpoint.config.tie_word_embeddings:
            raise ModelLoadError(where, "the adapter changes lm_head, which this model ties to its embeddings",
                                 "qwenkit cannot merge such an adapter; train without lm_head in target_modules")
        shape = source.shapes.get(f"{module}.weight")
        if shape is None or len(shape) != 2:
            raise ModelLoadError(where, f"the adapter changes {module!r}, which {source.name} does not have",
                                 OTHER_BASE)
        if (a.shape[1], b.shape[0]) != (shape[1], shape[0]):
            raise ModelLoadError(where, f"{module}: the adapter has A {list(a.shape)} and B {list(b.shape)}, but "
                                 f"the weight of {source.name} is {list(shape)}", OTHER_BASE)
