"""The models a server offers, by name: loaded at start or on first use, unloaded after keep_alive idle."""
import asyncio
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from qwenkit.engine.adapters import AdapterNotFoundError, check_name
from qwenkit.errors import InvalidRequestError, QwenkitError
from qwenkit.server.worker import EngineWorker

DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}


class ModelNotServedError(QwenkitError):
    def __init__(self, name: str, served: list[str]):
        self.name = name
        super().__init__(f"model {name!r} is not served here; choose one of: {', '.join(served)}")


def parse_keep_alive(value) -> float | None:
    """Seconds to stay loaded after the last request; None: forever (Ollama's negative values)."""
    if value is None:
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = DURATION.match(str(value))
        if not m:
            raise ValueError(f"keep_alive {value!r} is not a duration such as 5m, 30s or -1")
        seconds = float(m.group(1)) * UNITS[m.group(2)]
    return None if seconds < 0 else seconds


@dataclass(slots=True)
class ServedModel:
    name: str
    ref: str                      # what resolve() takes: a store name, folder or .gguf path given at start
    keep_alive: float | None
    worker: EngineWorker | None = None
    loaded_at: float = 0.0
    expires: float | None = None  # monotonic time to unload at, None: never
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    adapters: dict[str, str] = field(default_factory=dict)   # LoRA name -> folder, loaded with the model


def model_name(spec: str) -> tuple[str, str]:
    """`name=ref` or just `ref`; a path is served under its file or folder name."""
    if "=" in spec and not spec.startswith(("/", ".", "~")):
        name, ref = spec.split("=", 1)
        return name.strip(), ref.strip()
    from qwenkit.store.resolve import looks_like_path
    if looks_like_path(spec):
        return Path(spec.rstrip("/")).name.removesuffix(".gguf"), spec
    return spec, spec


class ModelPool:
    def __init__(self, specs: list[str], *, keep_alive: float | None = None, load_options: dict | None = None,
                 engine_options: dict | None = None, metrics=None, adapters: dict[str, str] | None = None):
        """`adapters`: LoRA name -> folder, served on the first model."""
        self.models: dict[str, ServedModel] = {}
        for spec in specs:
            name, ref = model_name(spec)
            self.models[name] = ServedModel(name, ref, keep_alive)
        for name, folder in (adapters or {}).items():
            self._check_new_adapter(name)
            next(iter(self.models.values())).adapters[name] = str(folder)
        self.load_options = load_options or {}
        self.engine_options = engine_options or {}
        self.metrics = metrics
        self.started = time.time()

    @property
    def names(self) -> list[str]:
        return list(self.models)

    @property
    def ids(self) -> list[str]:
        """What a request's `model` may say: the models, and BASE:ADAPTER for each loaded adapter."""
        return self.names + [f"{m.name}:{a}" for m in self.models.values() for a in m.adapters]

    def find(self, name: str | None) -> ServedModel:
        return self.route(name)[0]

    def route(self, name: str | None) -> tuple[ServedModel, str | None]:
        """A request's `model`: a served model, BASE:ADAPTER, or an adapter's own name -> (model, adapter)."""
        if not name and len(self.models) == 1:
            return next(iter(self.models.values())), None
        if served := self._model(name or ""):
            return served, None
        base, _, adapter = (name or "").rpartition(":")
        if served := self._model(base):
            if adapter not in served.adapters:
                raise AdapterNotFoundError(adapter, list(served.adapters))
            return served, adapter
        for served in self.models.values():
            if name in served.adapters:
                return served, name
        raise ModelNotServedError(name or "", self.ids)

    def _model(self, name: str) -> ServedModel | None:
        return self.models.get(name) or self.models.get(f"{name}:latest")

    async def get(self, name: str | None, keep_alive: float | None | str = "default") -> EngineWorker:
        return (await self.open(name, keep_alive))[0]

    async def open(self, name: str | None, keep_alive: float | None | str = "default"
                   ) -> tuple[EngineWorker, str | None]:
        """The worker of the model a request names, loaded if need be, and the adapter it asks for."""
        served, adapter = self.route(name)
        async with served.lock:
            if served.worker is None:
                served.worker = await asyncio.to_thread(self._load, served)
                served.loaded_at = time.time()
        if keep_alive != "default":
            served.keep_alive = keep_alive
        served.worker.last_used = time.monotonic()
        return served.worker, adapter

    def _load(self, served: ServedModel) -> EngineWorker:
        from qwenkit.llm import LLM
        llm = LLM(served.ref, **self.load_options, adapters=dict(served.adapters))
        return EngineWorker(served.name, llm, metrics=self.metrics, **self.engine_options)

    def loaded(self) -> list[ServedModel]:
        return [m for m in self.models.values() if m.worker is not None]

    def unload_idle(self, now: float | None = None) -> list[str]:
        now = time.monotonic() if now is None else now
        gone = []
        for m in self.loaded():
            if m.keep_alive is None or m.worker.in_flight:
                continue
            if now - m.worker.last_used >= m.keep_alive:
                self.unload(m)
                gone.append(m.name)
        return gone

    def unload(self, served: ServedModel) -> None:
        worker, served.worker = served.worker, None
        if worker is not None:
            worker.stop()

    # -- adapters, loaded and unloaded while the server runs ----------------------------------------------------
    async def load_adapter(self, name: str, folder: str, model: str | None = None) -> ServedModel:
        """Read and check the adapter beside the running engine; its thread puts it to use between steps."""
        self._check_new_adapter(name)
        served = self.find(model) if model else next(iter(self.models.values()))
        worker = await self.get(served.name)
        async with served.lock:
            self._check_new_adapter(name)
            prepared = await asyncio.to_thread(worker.llm.adapters.prepare, name, folder)
            await worker.call(worker.llm.adapters.add, prepared)
            served.adapters[name] = folder
        return served

    async def unload_adapter(self, name: str) -> ServedModel:
        """New requests may no longer name it at once; requests running it finish with it."""
        base, _, short = name.rpartition(":")
        served = self._model(base) if base else next((m for m in self.models.values() if name in m.adapters), None)
        if served is None or short not in served.adapters:
            raise AdapterNotFoundError(name, [i for i in self.ids if i not in self.names])
        async with served.lock:
            del served.adapters[short]
            if served.worker is not None:
                await served.worker.call(served.worker.llm.adapters.unload, short)
        return served

    def _check_new_adapter(self, name: str) -> None:
        check_name(name)
        if self._model(name) or any(name in m.adapters for m in self.models.values()):
            raise InvalidRequestError("lora_name", f"{name!r} is already the name of a served model or adapter")

    def close(self) -> None:
        for m in self.loaded():
            self.unload(m)
