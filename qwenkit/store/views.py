"""Folder views of stored models: QWENKIT_HOME/models/<name>/<tag>/{model,adapter}/ hold hard links
(or symlinks) to the blobs, named as the loaders expect (config.json, model.safetensors, x.gguf)."""
import os
import shutil
import uuid
from pathlib import Path

from qwenkit.store.layout import Store
from qwenkit.store.manifest import FileEntry, Manifest
from qwenkit.store.names import parse_name


def materialize(store: Store, m: Manifest) -> Path:
    root = store.view(parse_name(m.name))
    _sync(store, root / "model", m.files)
    if m.adapter:
        _sync(store, root / "adapter", m.adapter)
    elif (root / "adapter").exists():
        shutil.rmtree(root / "adapter")
    return root


def _sync(store: Store, folder: Path, entries: list[FileEntry]) -> None:
    wanted = set()
    for e in entries:
        dst = folder / e.path
        wanted.add(dst)
        blob = store.blob(e.sha256)
        if dst.exists() and os.path.samefile(dst, blob):
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            os.link(blob, tmp)
        except OSError:
            os.symlink(blob, tmp)
        os.replace(tmp, dst)
    for p in sorted(folder.rglob("*"), reverse=True):
        if p.name.startswith(".") and p.name.endswith(".tmp"):
            continue
        if p.is_dir():
            if not any(p.iterdir()):
                p.rmdir()
        elif p not in wanted:
            p.unlink()


def remove_view(store: Store, name) -> None:
    root = store.view(name)
    if root.exists():
        shutil.rmtree(root)
    parent = root.parent
    if parent.exists() and not any(parent.iterdir()):
        parent.rmdir()
