"""The models a server offers, by name: loaded at start or on first use, unloaded after keep_alive idle."""
import asyncio
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from qwenkit.errors import QwenkitError
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
                 engine_options: dict | None = None, metrics=None):
        self.models: dict[str, ServedModel] = {}
        for spec in specs:
            name, ref = model_name(spec)
            self.models[name] = ServedModel(name, ref, keep_alive)
        self.load_options = load_options or {}
        self.engine_options = engine_options or {}
        self.metrics = metrics
        self.started = time.time()

    @property
    def names(self) -> list[str]:
        return list(self.models)

    def find(self, name: str | None) -> ServedModel:
        if not name and len(self.models) == 1:
            return next(iter(self.models.values()))
        served = self.models.get(name or "") or self.models.get(f"{name}:latest")
        if served is None:
            raise ModelNotServedError(name or "", self.names)
        return served

    async def get(self, name: str | None, keep_alive: float | None | str = "default") -> EngineWorker:
        served = self.find(name)
        async with served.lock:
            if served.worker is None:
                served.worker = await asyncio.to_thread(self._load, served)
                served.loaded_at = time.time()
        if keep_alive != "default":
            served.keep_alive = keep_alive
        served.worker.last_used = time.monotonic()
        return served.worker

    def _load(self, served: ServedModel) -> EngineWorker:
        from qwenkit.llm import LLM
        llm = LLM(served.ref, **self.load_options)
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

    def close(self) -> None:
        for m in self.loaded():
            self.unload(m)
