"""`qwenkit pull`: download a model into the store, resumable, every file checked against the Hub's hash."""
import shutil
from pathlib import Path

from qwenkit.store import hub
from qwenkit.store.advice import fit_warning
from qwenkit.store.blobs import Digest, add_blob, blob_state, hash_file
from qwenkit.store.errors import DiskSpaceError, IntegrityError, PullError
from qwenkit.store.formats import SPLIT, classify
from qwenkit.store.layout import Store
from qwenkit.store.lock import file_lock
from qwenkit.store.manifest import FileEntry, Manifest, now, write_manifest
from qwenkit.store.progress import Reporter
from qwenkit.store.sources import Source, parse_source
from qwenkit.store.units import human_size
from qwenkit.store.views import materialize


def pull(ref: str, *, name: str | None = None, revision: str | None = None, context: int = 4096,
         store: Store | None = None, reporter: Reporter | None = None) -> Manifest:
    store, reporter = store or Store.default(), reporter or Reporter()
    src = parse_source(ref, name)
    if src.kind == "modelscope":
        from qwenkit.store.modelscope import pull_modelscope
        return pull_modelscope(src, revision, store, reporter)
    remote = hub.list_repo(src.repo, revision or "main", src.patterns)
    check_selection(src, remote)
    total = sum(f.size for f in remote.files)
    if warning := fit_warning(str(src.name), total, src.entry.release if src.entry else None, context):
        reporter.warn(warning)
    store.ensure()
    with store.lock(shared=True, on_wait=lambda: reporter.info("waiting for `qwenkit rm`/`prune` to finish")):
        check_disk(store, remote.files)
        entries = [FileEntry(f.path, fetch(store, remote, f, reporter), f.size) for f in remote.files]
        fmt, arch, quant = classify({e.path: store.blob(e.sha256) for e in entries})
        m = Manifest(name=str(src.name), format=fmt, architecture=arch,
                     quant=src.entry.quant if src.entry else quant,
                     source=f"hf:{src.repo}@{remote.commit}", files=entries, created=now())
        write_manifest(store, m)
        materialize(store, m)
    return m


def check_selection(src: Source, remote: hub.RemoteRepo) -> None:
    paths = [f.path for f in remote.files]
    if not any(p.endswith(".gguf") for p in src.patterns) and "config.json" not in paths:
        ggufs = [p for p in hub.all_files(src.repo, remote.commit) if p.endswith(".gguf")]
        if ggufs:
            raise PullError(f"{src.repo} holds GGUF files; pick one, e.g. `qwenkit pull hf:{src.repo}:"
                            f"{ggufs[0]}` (available: {', '.join(ggufs)})")
        raise PullError(f"{src.repo} has no config.json and no .gguf file; it is not a model qwenkit can run")
    if not paths:
        ggufs = [p for p in hub.all_files(src.repo, remote.commit) if p.endswith(".gguf")]
        raise PullError(f"no file in {src.repo} matches {src.selector or ', '.join(src.patterns)}"
                        + (f" (GGUF files there: {', '.join(ggufs)})" if ggufs else ""))
    stems = {SPLIT.sub(r"\g<stem>", p) for p in paths if p.endswith(".gguf")}
    if "config.json" not in paths and len(stems) > 1:
        raise PullError(f"{src.selector!r} matches several GGUF models in {src.repo}: {', '.join(paths)}; "
                        "name one file exactly")


def partial_key(f: hub.RemoteFile) -> str:
    return f.sha256 or f"git-{f.git_oid}"


def check_disk(store: Store, files: list[hub.RemoteFile]) -> None:
    need = 0
    for f in files:
        if f.sha256 and store.blob(f.sha256).is_file():
            continue
        partial = store.tmp / f"{partial_key(f)}.partial"
        need += f.size - (partial.stat().st_size if partial.is_file() else 0)
    free = shutil.disk_usage(store.root).free
    if need > free:
        raise DiskSpaceError(f"not enough free disk space in {store.root}: the download needs "
                             f"{human_size(need)} and {human_size(free)} is free; free some space "
                             "(`qwenkit rm`, `qwenkit prune`) or set QWENKIT_HOME to a larger disk")


def fetch(store: Store, remote: hub.RemoteRepo, f: hub.RemoteFile, reporter: Reporter) -> str:
    """sha256 of the stored blob for `f`, downloading it (or resuming) when the store lacks it."""
    if f.sha256 and blob_state(store, f.sha256, f.size) == "ok":
        return f.sha256
    key = partial_key(f)
    with file_lock(store.tmp / f"{key}.lock",
                   on_wait=lambda: reporter.info(f"{f.path}: another pull is fetching it, waiting")):
        if f.sha256 and blob_state(store, f.sha256, f.size) == "ok":
            return f.sha256
        partial = store.tmp / f"{key}.partial"
        digest = _from_hf_cache(remote, f, partial, reporter)
        if digest is None:
            hub.download(remote.repo, remote.commit, f, partial, reporter)
            digest = _hash(partial, f, reporter)
            if not _matches(digest, f):
                partial.unlink()
                raise IntegrityError(
                    f"{remote.repo}/{f.path}: the download does not match the hash the server reported "
                    f"(expected {f.sha256 or 'git blob ' + str(f.git_oid)} and {f.size} bytes, got sha256 "
                    f"{digest.sha256} and {digest.size} bytes); it was discarded. Run the pull again; "
                    f"if this repeats, {hub.endpoint()} is serving bad data")
        add_blob(store, partial, digest.sha256)
        return digest.sha256


def _from_hf_cache(remote: hub.RemoteRepo, f: hub.RemoteFile, partial: Path,
                   reporter: Reporter) -> Digest | None:
    """Reuse a copy in huggingface_hub's cache, after checking it like a download."""
    if partial.exists() or (cached := hub.cached_copy(remote.repo, remote.commit, f.path)) is None:
        return None
    shutil.copyfile(cached, partial)
    digest = _hash(partial, f, reporter)
    if _matches(digest, f):
        return digest
    partial.unlink()
    return None


def _hash(path: Path, f: hub.RemoteFile, reporter: Reporter) -> Digest:
    reporter.start(f"verify {f.path}", f.size)
    try:
        return hash_file(path, git=f.git_oid is not None, on_bytes=reporter.advance)
    finally:
        reporter.finish()


def _matches(d: Digest, f: hub.RemoteFile) -> bool:
    return d.size == f.size and (d.sha256 == f.sha256 if f.sha256 else d.git_sha1 == f.git_oid)
