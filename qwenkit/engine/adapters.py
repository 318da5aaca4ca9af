"""The LoRA adapters loaded on one model, by name: load, unload, and which adapter each token runs.

A loaded adapter gets a slot number that is never reused (0 is the base model), so cached KV blocks and
requests in flight can never see a different adapter under the same number. Unloading an adapter that
requests still run only retires it: its weights go when the last of them ends. The MultiLoRA wrappers
are put in on the first load and taken out when no adapter is left, so the base model then runs as if
none had ever been loaded.
"""
import itertools
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from qwenkit.errors import InvalidRequestError, ModelLoadError
from qwenkit.layers.multi_lora import ActiveAdapters, MultiLoRA, Target, locate
from qwenkit.tune.peft_format import read_adapter

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class AdapterNotFoundError(InvalidRequestError):
    def __init__(self, name: str, loaded: list[str]):
        self.name = name
        listing = ", ".join(loaded) if loaded else "none"
        super().__init__("adapter", f"no adapter named {name!r} is loaded; loaded adapters: {listing}")


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidRequestError("adapter name", f"{name!r} must be 1-64 letters, digits, '_', '-' or '.', "
                                  "starting with a letter or digit")
    return name


@dataclass(slots=True)
class PreparedAdapter:
    """An adapter read, checked against the model and laid out per wrapped module, not yet in use."""
    name: str | None
    path: Path
    modules: dict[str, tuple[torch.Tensor, torch.Tensor]]   # module path -> (A [R, in], B [out, R] scaled)


class AdapterRegistry:
    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.active = ActiveAdapters()
        self.slots: dict[str, int] = {}
        self.paths: dict[str, Path] = {}
        self.default = 0                   # the slot of a request that names no adapter
        self.users: Counter[int] = Counter()
        self.retired: set[int] = set()     # unloaded while requests still ran them
        self.layers: dict[str, MultiLoRA] = {}
        self._slots = itertools.count(1)

    @property
    def names(self) -> list[str]:
        return list(self.slots)

    # -- loading -----------------------------------------------------------------------------------------
    def prepare(self, name: str | None, folder: str | Path) -> PreparedAdapter:
        """Read and check an adapter without changing anything, so it can run beside a busy engine."""
        if name is not None:
            self._check_free(name)
        files = read_adapter(folder)
        parts: dict[str, list[tuple[Target, torch.Tensor, torch.Tensor]]] = {}
        for module, (a, b) in files.weights.items():
            target = locate(self.model, module)
            if isinstance(target, str):
                hint = _hint(files.base_model) if "no such" in target else "leave it out of target_modules"
                raise ModelLoadError(folder, f"module {module}: {target}", hint)
            if a.shape[1] != target.in_features or b.shape[0] != target.size:
                raise ModelLoadError(folder, f"module {module} has A {list(a.shape)} and B {list(b.shape)}, but "
                                     f"this model's {module} maps {target.in_features} -> {target.size} features",
                                     _hint(files.base_model))
            parts.setdefault(target.path, []).append((target, a.float(), b.float() * files.scale))
        dtype, device = self.model.dtype, self.model.inv_freq.device
        modules = {}
        for path, pieces in parts.items():
            a = torch.cat([p[1] for p in pieces])
            b = torch.zeros(pieces[0][0].out_features, a.shape[0])
            r = 0
            for target, _, piece in pieces:
                b[target.offset:target.offset + target.size, r:r + piece.shape[1]] = piece
                r += piece.shape[1]
            modules[path] = (a.to(device, dtype).contiguous(), b.to(device, dtype).contiguous())
        return PreparedAdapter(name, Path(folder), modules)

    def add(self, prepared: PreparedAdapter) -> int:
        """Put a prepared adapter to use; the engine must not be inside a step."""
        if prepared.name is not None:
            self._check_free(prepared.name)
        slot = next(self._slots)
        for path, pair in prepared.modules.items():
            self._layer(path).loras[slot] = pair
        if prepared.name is not None:
            self.slots[prepared.name], self.paths[prepared.name] = slot, prepared.path
        return slot

    def load(self, name: str, folder: str | Path) -> int:
        return self.add(self.prepare(name, folder))

    def set_default(self, folder: str | Path) -> None:
        """The adapter every request without one runs (a model made with `qwenkit create --adapter`)."""
        self.default = self.add(self.prepare(None, folder))

    def unload(self, name: str) -> None:
        slot = self.slot(name)
        del self.slots[name], self.paths[name]
        if self.users[slot]:
            self.retired.add(slot)
        else:
            self._drop(slot)

    # -- requests ----------------------------------------------------------------------------------------
    def slot(self, name: str | None) -> int:
        if name is None:
            return self.default
        if name not in self.slots:
            raise AdapterNotFoundError(name, self.names)
        return self.slots[name]

    def acquire(self, name: str | None) -> int:
        slot = self.slot(name)
        if slot:
            self.users[slot] += 1
        return slot

    def release(self, slot: int) -> None:
        if not slot:
            return
        self.users[slot] -= 1
        if self.users[slot] <= 0:
            del self.users[slot]
            if slot in self.retired:
                self.retired.discard(slot)
                self._drop(slot)

    def apply(self, slots: list[int], lengths: list[int] | None = None) -> "AdapterRegistry":
        """`with registry.apply(slots, lengths):` a forward whose rows run `slots[i]` for `lengths[i]` tokens
        each (one slot: every row). The base model is restored on leaving."""
        present = set(slots)
        present.discard(0)
        if not present:
            self.active.groups = []
        elif len(set(slots)) == 1:
            self.active.groups = [(slots[0], None)]
        else:
            index = torch.repeat_interleave(torch.tensor(slots), torch.tensor(lengths))
            device = self.model.inv_freq.device
            self.active.groups = [(s, (index == s).nonzero().squeeze(1).to(device)) for s in sorted(present)]
        return self

    def __enter__(self) -> "AdapterRegistry":
        return self

    def __exit__(self, *exc) -> None:
        self.active.groups = []

    # -- wrappers ----------------------------------------------------------------------------------------
    def _check_free(self, name: str) -> None:
        check_name(name)
        if name in self.slots:
            raise InvalidRequestError("adapter name", f"an adapter named {name!r} is already loaded; unload it "
                                      "first or pick another name")

    def _layer(self, path: str) -> MultiLoRA:
        if path not in self.layers:
            parent_path, _, attr = path.rpartition(".")
            parent = self.model.get_submodule(parent_path)
            self.layers[path] = MultiLoRA(getattr(parent, attr), self.active)
            setattr(parent, attr, self.layers[path])
        return self.layers[path]

    def _drop(self, slot: int) -> None:
        for layer in self.layers.values():
            layer.loras.pop(slot, None)
        if not any(layer.loras for layer in self.layers.values()):
            for path, layer in self.layers.items():
                parent_path, _, attr = path.rpartition(".")
                setattr(self.model.get_submodule(parent_path), attr, layer.base)
            self.layers.clear()


def _hint(base_model: str | None) -> str:
    made_for = f" ({base_model})" if base_model else ""
    return f"the adapter was made for another base model{made_for}; use it with that model"
