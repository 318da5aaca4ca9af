"""Content-addressed blobs: one read-only file per sha256, trusted only while it matches its stamp."""
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qwenkit.store.atomic import sync_dir, write_json
from qwenkit.store.layout import Store

CHUNK = 8 << 20
OnBytes = Callable[[int], None] | None


@dataclass(slots=True)
class Digest:
    sha256: str
    size: int
    git_sha1: str | None = None


def hash_file(path: Path, git: bool = False, on_bytes: OnBytes = None) -> Digest:
    """sha256 of a file, and optionally its git blob id (how the Hub names files that are not in LFS)."""
    size = path.stat().st_size
    sha = hashlib.sha256()
    sha1 = hashlib.sha1(f"blob {size}\0".encode()) if git else None
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
            if sha1:
                sha1.update(chunk)
            if on_bytes:
                on_bytes(len(chunk))
    return Digest(sha.hexdigest(), size, sha1.hexdigest() if sha1 else None)


def copy_hashed(src: Path, dst: Path, on_bytes: OnBytes = None) -> Digest:
    """Copy and hash in one pass."""
    sha, size = hashlib.sha256(), 0
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while chunk := fin.read(CHUNK):
            sha.update(chunk)
            fout.write(chunk)
            size += len(chunk)
            if on_bytes:
                on_bytes(len(chunk))
        fout.flush()
        os.fsync(fout.fileno())
    return Digest(sha.hexdigest(), size)


def _fingerprint(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}


def write_stamp(store: Store, sha256: str) -> None:
    write_json(store.stamp(sha256), _fingerprint(store.blob(sha256)))


def is_stamped(store: Store, sha256: str) -> bool:
    try:
        return json.loads(store.stamp(sha256).read_text()) == _fingerprint(store.blob(sha256))
    except (OSError, ValueError):
        return False


def check_blob(store: Store, sha256: str, on_bytes: OnBytes = None) -> str:
    """Re-hash a blob: 'ok', 'missing' or 'corrupt'. A corrupt blob loses its stamp."""
    path = store.blob(sha256)
    if not path.is_file():
        return "missing"
    if hash_file(path, on_bytes=on_bytes).sha256 == sha256:
        write_stamp(store, sha256)
        return "ok"
    store.stamp(sha256).unlink(missing_ok=True)
    return "corrupt"


def blob_state(store: Store, sha256: str, size: int | None = None) -> str:
    """Cheap when the blob is unchanged since it was last hashed; re-hashes otherwise."""
    path = store.blob(sha256)
    try:
        actual = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    if size is not None and actual != size:
        store.stamp(sha256).unlink(missing_ok=True)
        return "corrupt"
    if is_stamped(store, sha256):
        return "ok"
    return check_blob(store, sha256)


def add_blob(store: Store, src: Path, sha256: str, link: bool = False) -> Path:
    """Move `src` (already hashed to `sha256`) into the store, or hard-link it when `link`."""
    dst = store.blob(sha256)
    store.blobs.mkdir(parents=True, exist_ok=True)
    if blob_state(store, sha256) == "ok":
        if not link:
            src.unlink(missing_ok=True)
        return dst
    if link:
        tmp = store.tmp / f"link-{uuid.uuid4().hex}"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
            os.chmod(tmp, 0o444)
        src = tmp
    else:
        os.chmod(src, 0o444)
    os.replace(src, dst)
    sync_dir(dst.parent)
    write_stamp(store, sha256)
    return dst


def remove_blob(store: Store, sha256: str) -> int:
    path = store.blob(sha256)
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        size = 0
    store.stamp(sha256).unlink(missing_ok=True)
    return size


def stored_blobs(store: Store) -> dict[str, int]:
    """sha256 -> size of every blob file on disk."""
    if not store.blobs.is_dir():
        return {}
    out = {}
    for p in store.blobs.iterdir():
        if p.name.startswith("sha256-") and p.is_file():
            out[p.name.removeprefix("sha256-")] = p.stat().st_size
    return out
