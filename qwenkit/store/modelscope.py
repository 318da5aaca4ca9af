"""`modelscope:ORG/REPO[:FILE]`: pull from the ModelScope Hub through its client (`pip install modelscope`).

The client lists the repository once (sizes and sha256s), qwenkit picks the files the same way as for `hf:`,
and the client downloads just those into a staging folder (resumable: it keeps partial files there). Everything
the client writes (its cache, locks, session id) stays in that folder, and its Alibaba Cloud region probe is
off, so a pull talks to the ModelScope endpoint only. Each file is hashed again before it is stored.
"""
import errno
import functools
import hashlib
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from qwenkit.store.advice import fit_warning
from qwenkit.store.blobs import add_blob, blob_state, hash_file
from qwenkit.store.errors import DiskSpaceError, IntegrityError, PullError
from qwenkit.store.formats import SPLIT, classify
from qwenkit.store.hub import RemoteFile, matches
from qwenkit.store.layout import Store
from qwenkit.store.manifest import FileEntry, Manifest, now, write_manifest
from qwenkit.store.progress import Reporter
from qwenkit.store.pull import check_disk
from qwenkit.store.sources import Source
from qwenkit.store.views import materialize

DEFAULT_REVISION = "master"        # ModelScope's default branch
OFFLINE_VAR = "MODELSCOPE_OFFLINE"
CLIENT_ENV = {"MODELSCOPE_DOWNLOAD_INTRA_CLOUD": "false"}   # else it asks the server for a URL and fetches it


def pull_modelscope(src: Source, revision: str | None, store: Store, reporter: Reporter) -> Manifest:
    ms = _client()
    rev, ref = revision or DEFAULT_REVISION, f"modelscope:{src.repo}"
    store.ensure()
    staging = store.tmp / f"modelscope-{src.repo.replace('/', '--')}-{hashlib.sha1(rev.encode()).hexdigest()[:8]}"
    user = ms.HubConfig()                         # MODELSCOPE_ENDPOINT and the `modelscope login` token
    config = ms.HubConfig(cache_dir=staging / "client", config_dir=staging / "client", token=user.token)
    with _client_env(), _errors(ms, ref, user.endpoint):
        api = ms.HubApi(config=config)
        api = ms.HubApi(config=config, endpoint=api.resolve_endpoint_for_read(src.repo))
        reporter.info(f"listing {ref} on {config.endpoint}")
        files = select(src, [f for f in api.list_repo_files(src.repo, "model", revision=rev) if not f.is_dir])
    if warning := fit_warning(str(src.name), sum(f.size for f in files), None):
        reporter.warn(warning)
    with store.lock(shared=True, on_wait=lambda: reporter.info("waiting for `qwenkit rm`/`prune` to finish")):
        check_disk(store, [RemoteFile(f.path, f.size, f.sha256, None) for f in files])
        missing = [f for f in files if not (f.sha256 and blob_state(store, f.sha256, f.size) == "ok")]
        if missing:
            with _client_env(), _quiet_bars(), _errors(ms, ref, config.endpoint):
                api.download_repo(src.repo, "model", revision=rev, cache_dir=staging / "client",
                                  local_dir=staging / "files", max_workers=1, progress_callbacks=[_bar(ms, reporter)],
                                  file_list=[{"Path": f.path, "Size": f.size, "Sha256": f.sha256} for f in missing])
        entries = [FileEntry(f.path, _store_file(store, staging / "files" / f.path, f, ref, reporter), f.size)
                   for f in files]
        fmt, arch, quant = classify({e.path: store.blob(e.sha256) for e in entries})
        m = Manifest(name=str(src.name), format=fmt, architecture=arch, quant=quant, source=f"{ref}@{rev}",
                     files=entries, created=now())
        write_manifest(store, m)
        materialize(store, m)
    shutil.rmtree(staging, ignore_errors=True)
    return m


def select(src: Source, files: list) -> list:
    """The listed files that make the model, or a PullError saying which name to use instead."""
    ref = f"modelscope:{src.repo}"
    chosen = [f for f in files if matches(f.path, src.patterns)]
    names = [f.path for f in chosen]
    ggufs = sorted(f.path for f in files if f.path.endswith(".gguf"))
    if not any(p.endswith(".gguf") for p in src.patterns) and "config.json" not in names:
        if ggufs:
            raise PullError(f"{ref} holds GGUF files; pick one, e.g. `qwenkit pull {ref}:{ggufs[0]}` "
                            f"(available: {', '.join(ggufs)})")
        raise PullError(f"{ref} has no config.json and no .gguf file; it is not a model qwenkit can run")
    if not chosen:
        raise PullError(f"no file in {ref} matches {src.selector}"
                        + (f" (GGUF files there: {', '.join(ggufs)})" if ggufs else ""))
    if "config.json" not in names and len({SPLIT.sub(r"\g<stem>", p) for p in names}) > 1:
        raise PullError(f"{src.selector!r} matches several GGUF models in {ref}: {', '.join(names)}; "
                        "name one file exactly")
    return chosen


def _store_file(store: Store, path: Path, f, ref: str, reporter: Reporter) -> str:
    """sha256 of the stored blob for listed file `f`, moving the downloaded copy into the store."""
    if f.sha256 and blob_state(store, f.sha256, f.size) == "ok":
        return f.sha256
    reporter.start(f"verify {f.path}", f.size)
    try:
        digest = hash_file(path, on_bytes=reporter.advance)
    finally:
        reporter.finish()
    if digest.size != f.size or (f.sha256 and digest.sha256 != f.sha256):
        path.unlink()
        raise IntegrityError(f"{ref}/{f.path}: the download does not match the listing (expected sha256 "
                             f"{f.sha256} and {f.size} bytes, got {digest.sha256} and {digest.size} bytes); it "
                             "was discarded. Run the pull again")
    add_blob(store, path, digest.sha256)
    return digest.sha256


def _client():
    try:
        import modelscope  # noqa: F401  (what users install; it brings modelscope_hub, the client itself)
        import modelscope_hub
        from modelscope_hub import errors  # noqa: F401
    except ImportError:
        raise PullError("`modelscope:` names need the ModelScope client: run `pip install modelscope`") from None
    if os.environ.get(OFFLINE_VAR, "").lower() in ("1", "true", "yes", "on"):
        raise PullError(f"offline mode is on ({OFFLINE_VAR} is set); unset it to download from ModelScope")
    if not os.environ.get("MODELSCOPE_LOG_LEVEL"):
        logging.getLogger("modelscope_hub").setLevel(logging.WARNING)    # the reporter says what happens
    return modelscope_hub


@contextmanager
def _client_env() -> Iterator[None]:
    added = [k for k in CLIENT_ENV if k not in os.environ]
    os.environ.update({k: CLIENT_ENV[k] for k in added})
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


@contextmanager
def _quiet_bars() -> Iterator[None]:
    """The client draws tqdm bars of its own next to the reporter's; silence them for the download."""
    download = sys.modules.get("modelscope_hub._download")
    bar = getattr(download, "tqdm", None)
    if bar is None:
        yield
        return
    download.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        download.tqdm = bar


@contextmanager
def _errors(ms, ref: str, where: str) -> Iterator[None]:
    """Turn the client's errors into PullErrors that say what to do."""
    e = ms.errors
    try:
        yield
    except e.NotExistError:
        raise PullError(f"{ref}: no such repository or revision on {where} (check the name; private "
                        "repositories need `modelscope login` or MODELSCOPE_API_TOKEN)") from None
    except (e.AuthenticationError, e.PermissionDeniedError):
        raise PullError(f"{ref}: access denied; log in with `modelscope login` or set MODELSCOPE_API_TOKEN") from None
    except e.FileIntegrityError as x:
        raise IntegrityError(f"{ref}: a download did not match its listed size or hash ({_reason(x)}); "
                             "run the pull again") from None
    except e.NetworkError as x:
        raise PullError(f"{ref}: cannot reach {where} ({_reason(x)}); check your connection or "
                        "MODELSCOPE_ENDPOINT and run the same pull again to resume") from None
    except e.HubError as x:
        raise PullError(f"{ref}: {_reason(x)}; run the same pull again to resume") from None
    except OSError as x:
        if x.errno == errno.ENOSPC:
            raise DiskSpaceError(f"{ref}: the disk is full; free some space or set QWENKIT_HOME to a larger "
                                 "disk, then run the same pull again to resume") from None
        raise


def _reason(x: Exception) -> str:
    failed = getattr(x, "failed_files", None) or {}
    parts = [(getattr(x, "message", None) or str(x)).splitlines()[0]]
    parts += [f"{path}: {str(f).splitlines()[0]}" for path, f in list(failed.items())[:3]]
    return "; ".join(parts)


def _bar(ms, reporter: Reporter) -> type:
    class Bar(ms.ProgressCallback):
        def __init__(self, filename: str, file_size: int):
            super().__init__(filename, file_size)
            reporter.start(filename, file_size or None)

        def update(self, size: int) -> None:
            reporter.advance(size)

        def end(self) -> None:
            reporter.finish()
    return Bar
