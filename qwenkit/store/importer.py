"""`qwenkit import`: put a local Hugging Face folder or GGUF file into the store, copied or hard-linked."""
import shutil
import uuid
from pathlib import Path

from qwenkit.store import builtin
from qwenkit.store.blobs import add_blob, copy_hashed, hash_file
from qwenkit.store.errors import DiskSpaceError, StoreError
from qwenkit.store.formats import LocalModel, inspect_path
from qwenkit.store.layout import Store
from qwenkit.store.manifest import FileEntry, Manifest, now, write_manifest
from qwenkit.store.names import ModelName, parse_name
from qwenkit.store.progress import Reporter
from qwenkit.store.units import human_size
from qwenkit.store.views import materialize


def import_model(path: str | Path, name: str, *, link: bool = False, store: Store | None = None,
                 reporter: Reporter | None = None) -> Manifest:
    store, reporter = store or Store.default(), reporter or Reporter()
    target = writable_name(name)
    local = inspect_path(Path(path))
    store.ensure()
    with store.lock(shared=True):
        m = local_manifest(store, local, str(target), f"import:{Path(path).expanduser().resolve()}",
                           link, reporter)
        write_manifest(store, m)
        materialize(store, m)
    return m


def writable_name(name: str) -> ModelName:
    target = parse_name(name)
    if builtin.builtin_name(target):
        raise StoreError(f"{target} is a built-in name; choose another name")
    return target


def local_manifest(store: Store, local: LocalModel, name: str, source: str, link: bool,
                   reporter: Reporter) -> Manifest:
    """Store the files of `local` as blobs (call with the store lock held) and describe them."""
    return Manifest(name=name, format=local.format, architecture=local.architecture, quant=local.quant,
                    source=source, files=ingest(store, local.files, link, reporter), created=now())


def ingest(store: Store, files: dict[str, Path], link: bool, reporter: Reporter) -> list[FileEntry]:
    if not link:
        need = sum(p.stat().st_size for p in files.values())
        free = shutil.disk_usage(store.root).free
        if need > free:
            raise DiskSpaceError(f"not enough free disk space in {store.root} to copy {human_size(need)} "
                                 f"({human_size(free)} free); use --link to hard-link instead, free some "
                                 "space, or set QWENKIT_HOME to a larger disk")
    entries = []
    for rel, path in files.items():
        reporter.start(rel, path.stat().st_size)
        try:
            if link:
                digest = hash_file(path, on_bytes=reporter.advance)
                add_blob(store, path, digest.sha256, link=True)
            else:
                tmp = store.tmp / f"import-{uuid.uuid4().hex}"
                try:
                    digest = copy_hashed(path, tmp, on_bytes=reporter.advance)
                    add_blob(store, tmp, digest.sha256)
                finally:
                    tmp.unlink(missing_ok=True)
        finally:
            reporter.finish()
        entries.append(FileEntry(rel, digest.sha256, digest.size))
    return entries
