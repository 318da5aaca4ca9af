"""`qwenkit verify`: re-hash every blob a model uses and report the missing and corrupt ones."""
from dataclasses import dataclass, field

from qwenkit.store.blobs import check_blob
from qwenkit.store.errors import ModelNotFoundError
from qwenkit.store.layout import Store
from qwenkit.store.manifest import Manifest, list_manifests
from qwenkit.store.progress import Reporter
from qwenkit.store.resolve import find_manifest, store_name


@dataclass(slots=True)
class Problem:
    model: str
    path: str
    sha256: str
    state: str            # "missing" or "corrupt"


@dataclass(slots=True)
class VerifyReport:
    models: list[str] = field(default_factory=list)
    blobs: int = 0
    bytes: int = 0
    problems: list[Problem] = field(default_factory=list)


def verify(name: str | None = None, store: Store | None = None,
           reporter: Reporter | None = None) -> VerifyReport:
    store, reporter = store or Store.default(), reporter or Reporter()
    models = _select(store, name)
    report = VerifyReport(models=[m.name for m in models])
    states: dict[str, str] = {}
    with store.lock(shared=True):
        for m in models:
            for e in m.files + m.adapter:
                if e.sha256 not in states:
                    reporter.start(f"{m.name} {e.path}", e.size)
                    try:
                        states[e.sha256] = check_blob(store, e.sha256, on_bytes=reporter.advance)
                    finally:
                        reporter.finish()
                    report.blobs += 1
                    report.bytes += e.size
                if states[e.sha256] != "ok":
                    report.problems.append(Problem(m.name, e.path, e.sha256, states[e.sha256]))
    return report


def _select(store: Store, name: str | None) -> list[Manifest]:
    if name is None:
        return list_manifests(store)
    m = find_manifest(store, store_name(name))
    if m is None:
        raise ModelNotFoundError(f"{name!r} is not in the store; `qwenkit list` shows what is")
    return [m]
