"""Where the store keeps things under QWENKIT_HOME."""
import os
from dataclasses import dataclass
from pathlib import Path

from qwenkit.store.lock import file_lock
from qwenkit.store.names import ModelName


def default_home() -> Path:
    return Path(os.environ.get("QWENKIT_HOME") or Path.home() / ".qwenkit").expanduser()


@dataclass(slots=True)
class Store:
    root: Path

    @classmethod
    def default(cls) -> "Store":
        return cls(default_home())

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    @property
    def manifests(self) -> Path:
        return self.root / "manifests"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def stamps(self) -> Path:
        return self.root / "stamps"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def blob(self, sha256: str) -> Path:
        return self.blobs / f"sha256-{sha256}"

    def stamp(self, sha256: str) -> Path:
        return self.stamps / sha256

    def manifest(self, name: ModelName) -> Path:
        return self.manifests / name.name / f"{name.tag}.json"

    def view(self, name: ModelName) -> Path:
        return self.models / name.name / name.tag

    def lock(self, shared: bool = False, on_wait=None):
        """Shared by commands that add files (pull, import, create), exclusive for rm and prune."""
        return file_lock(self.root / ".lock", shared=shared, on_wait=on_wait)

    def ensure(self) -> None:
        for d in (self.blobs, self.manifests, self.models, self.stamps, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
