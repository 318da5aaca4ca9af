"""Manifests: a small JSON file per name:tag listing the blobs that make up a model."""
import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from qwenkit.store.atomic import write_json
from qwenkit.store.errors import StoreError
from qwenkit.store.layout import Store
from qwenkit.store.names import ModelName, is_valid_name, parse_name


@dataclass(slots=True)
class FileEntry:
    path: str      # relative path inside the model folder, '/'-separated
    sha256: str
    size: int


@dataclass(slots=True)
class Manifest:
    name: str                # "qwen3:0.6b"
    format: str              # "hf" or "gguf"
    architecture: str
    quant: str
    source: str
    files: list[FileEntry]
    created: str = ""
    base: str | None = None  # the model a `create` started from
    adapter: list[FileEntry] = field(default_factory=list)
    system: str | None = None
    params: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files) + sum(f.size for f in self.adapter)

    @property
    def digest(self) -> str:
        """Identity of the content: same files, adapter, system and params give the same id."""
        body = json.dumps([[asdict(f) for f in self.files], [asdict(f) for f in self.adapter],
                           self.system, self.params], sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()

    def blobs(self) -> set[str]:
        return {f.sha256 for f in self.files} | {f.sha256 for f in self.adapter}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["size"], d["digest"] = self.size, self.digest
        return d

    @classmethod
    def from_dict(cls, d: dict, source: str = "manifest") -> "Manifest":
        try:
            files = [_entry(f) for f in d["files"]]
            adapter = [_entry(f) for f in d.get("adapter") or []]
            return cls(name=d["name"], format=d["format"], architecture=d.get("architecture", ""),
                       quant=d.get("quant", ""), source=d.get("source", ""), files=files,
                       created=d.get("created", ""), base=d.get("base"), adapter=adapter,
                       system=d.get("system"), params=dict(d.get("params") or {}))
        except (KeyError, TypeError, ValueError) as e:
            raise StoreError(f"{source}: damaged manifest ({e}); remove the model with `qwenkit rm` "
                             "and pull or import it again") from None


def _entry(d: dict) -> FileEntry:
    return FileEntry(path=safe_relpath(d["path"]), sha256=_hex(d["sha256"]), size=int(d["size"]))


def _hex(s: str) -> str:
    if len(s) != 64 or any(c not in "0123456789abcdef" for c in s):
        raise ValueError(f"bad sha256 {s!r}")
    return s


def safe_relpath(path: str) -> str:
    """A relative '/'-separated path that stays inside its folder."""
    parts = path.replace("\\", "/").split("/")
    if "\0" in path or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"unsafe file path {path!r}")
    return "/".join(parts)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_manifest(store: Store, name: ModelName) -> Manifest | None:
    path = store.manifest(name)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise StoreError(f"{path}: unreadable manifest ({e}); remove it with `qwenkit rm {name}`") from None
    return Manifest.from_dict(data, str(path))


def write_manifest(store: Store, m: Manifest) -> None:
    write_json(store.manifest(parse_name(m.name)), m.to_dict())


def manifest_paths(store: Store) -> list[tuple[ModelName, Path]]:
    if not store.manifests.is_dir():
        return []
    out = []
    for path in sorted(store.manifests.glob("*/*.json")):
        if is_valid_name(f"{path.parent.name}:{path.stem}"):
            out.append((ModelName(path.parent.name, path.stem), path))
    return out


def list_manifests(store: Store) -> list[Manifest]:
    """Every readable manifest; a damaged one raises so nothing is deleted on a wrong picture of the store."""
    return [m for name, _ in manifest_paths(store) if (m := read_manifest(store, name))]
