"""`qwenkit rm` and `qwenkit prune`: delete names, then the blobs no manifest uses any more."""
import contextlib
import shutil
from dataclasses import dataclass, field

from qwenkit.store import builtin
from qwenkit.store.blobs import remove_blob, stored_blobs
from qwenkit.store.errors import ModelNotFoundError, StoreError
from qwenkit.store.layout import Store
from qwenkit.store.lock import is_locked
from qwenkit.store.manifest import list_manifests, manifest_paths
from qwenkit.store.names import parse_name
from qwenkit.store.views import remove_view

WAITING = "waiting for another qwenkit command (pull, import or create) to finish"


@dataclass(slots=True)
class Cleanup:
    removed: list[str] = field(default_factory=list)   # model names
    blobs: int = 0
    partials: int = 0
    freed: int = 0                                     # bytes


def remove(names: list[str], store: Store | None = None, on_wait=None) -> Cleanup:
    store = store or Store.default()
    targets = []
    for n in names:
        name = parse_name(n)
        if builtin.builtin_name(name):
            raise StoreError(f"{name} is built in (pip package {builtin.PACKAGE}); "
                             f"`pip uninstall {builtin.PACKAGE}` removes it")
        if not store.manifest(name).exists():
            raise ModelNotFoundError(f"{n!r} is not in the store; `qwenkit list` shows what is")
        targets.append(name)
    out = Cleanup()
    with store.lock(on_wait=on_wait):
        for name in targets:
            store.manifest(name).unlink(missing_ok=True)
            _rmdir_empty(store.manifest(name).parent)
            remove_view(store, name)
            out.removed.append(str(name))
        _unused_blobs(store, out)
    return out


def prune(store: Store | None = None, dry_run: bool = False, on_wait=None) -> Cleanup:
    """Unused blobs, interrupted downloads and imports, and views whose manifest is gone."""
    store = store or Store.default()
    out = Cleanup()
    if not store.root.exists():
        return out
    with store.lock(on_wait=on_wait):
        _unused_blobs(store, out, dry_run)
        if store.tmp.is_dir():
            for p in sorted(store.tmp.iterdir()):
                if p.suffix == ".lock" and is_locked(p):
                    continue
                out.partials += p.suffix == ".partial"
                out.freed += p.stat().st_size if p.is_file() else 0
                if not dry_run:
                    shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
        if not dry_run:
            _orphan_views(store)
            _orphan_stamps(store)
    return out


def _unused_blobs(store: Store, out: Cleanup, dry_run: bool = False) -> None:
    used = set().union(*(m.blobs() for m in list_manifests(store)))
    for sha, size in stored_blobs(store).items():
        if sha not in used:
            out.blobs += 1
            out.freed += size
            if not dry_run:
                remove_blob(store, sha)


def _orphan_views(store: Store) -> None:
    if not store.models.is_dir():
        return
    known = {(n.name, n.tag) for n, _ in manifest_paths(store)}
    for folder in store.models.iterdir():
        for view in (folder.iterdir() if folder.is_dir() else []):
            if (folder.name, view.name) not in known:
                shutil.rmtree(view, ignore_errors=True)
        _rmdir_empty(folder)


def _orphan_stamps(store: Store) -> None:
    if store.stamps.is_dir():
        blobs = stored_blobs(store)
        for p in store.stamps.iterdir():
            if p.name not in blobs:
                p.unlink(missing_ok=True)


def _rmdir_empty(path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()
