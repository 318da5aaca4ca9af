"""The Hugging Face Hub side of `pull`: list a repo's files with their hashes, fetch one with resume.

All traffic goes through huggingface_hub, so HF_ENDPOINT, HF_TOKEN and proxies apply as usual.
"""
import errno
import fnmatch
import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from qwenkit.store.errors import DiskSpaceError, PullError
from qwenkit.store.progress import HubBar, Reporter

DEFAULT_ENDPOINT = "https://huggingface.co"
OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


@dataclass(slots=True)
class RemoteFile:
    path: str
    size: int
    sha256: str | None     # LFS files: the Hub reports their sha256
    git_oid: str | None    # other files: their git blob id (sha1 of "blob <size>\0" + content)


@dataclass(slots=True)
class RemoteRepo:
    repo: str
    commit: str
    files: list[RemoteFile]


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def _hub():
    try:
        import huggingface_hub
        from huggingface_hub import constants
    except ImportError:
        raise PullError("`qwenkit pull` downloads with huggingface_hub: "
                        "run `pip install huggingface_hub`") from None
    constants.HF_HUB_DISABLE_TELEMETRY = True
    if constants.HF_HUB_OFFLINE or any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
                                       for v in OFFLINE_VARS):
        raise PullError("offline mode is on (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set); "
                        "unset it to download models")
    return huggingface_hub


@contextmanager
def hub_errors(what: str) -> Iterator[None]:
    """Turn huggingface_hub and network errors into PullErrors that say what to do."""
    from huggingface_hub import errors
    try:
        yield
    except errors.GatedRepoError:
        raise PullError(f"{what}: the repository is gated; accept its terms on the Hub and log in "
                        "(`hf auth login` or HF_TOKEN)") from None
    except errors.RepositoryNotFoundError:
        raise PullError(f"{what}: no such repository on {endpoint()} (check the name; private "
                        "repositories need `hf auth login` or HF_TOKEN)") from None
    except errors.RevisionNotFoundError:
        raise PullError(f"{what}: no such revision on {endpoint()}") from None
    except errors.OfflineModeIsEnabled:
        raise PullError("offline mode is on (HF_HUB_OFFLINE is set); unset it to download models") from None
    except errors.HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else "?"
        raise PullError(f"{what}: {endpoint()} answered HTTP {status}; try again later "
                        "(the download resumes where it stopped)") from None
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise DiskSpaceError(f"{what}: the disk is full; free some space or set QWENKIT_HOME to a "
                                 "larger disk, then run the same pull again to resume") from None
        raise PullError(f"{what}: {e}; check your connection or HF_ENDPOINT and run the same pull "
                        "again to resume") from None
    except Exception as e:
        if type(e).__module__.startswith("httpx"):
            raise PullError(f"{what}: cannot reach {endpoint()} ({e}); check your connection or "
                            "HF_ENDPOINT and run the same pull again to resume") from None
        raise


def list_repo(repo: str, revision: str, patterns: tuple[str, ...]) -> RemoteRepo:
    hub = _hub()
    with hub_errors(repo):
        info = hub.HfApi(endpoint=endpoint(), library_name="qwenkit").model_info(
            repo, revision=revision, files_metadata=True)
    files = []
    for s in info.siblings or []:
        if not matches(s.rfilename, patterns):
            continue
        if s.size is None or (s.lfs is None and s.blob_id is None):
            files.append(_head(repo, info.sha, s.rfilename))
        else:
            files.append(RemoteFile(s.rfilename, s.lfs.size if s.lfs else s.size,
                                    s.lfs.sha256 if s.lfs else None, None if s.lfs else s.blob_id))
    if not info.sha:
        raise PullError(f"{repo}: {endpoint()} did not report a commit; is HF_ENDPOINT a Hub mirror?")
    return RemoteRepo(repo, info.sha, files)


def matches(path: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(path.lower(), p.lower()) for p in patterns)


def all_files(repo: str, revision: str) -> list[str]:
    hub = _hub()
    with hub_errors(repo):
        info = hub.HfApi(endpoint=endpoint(), library_name="qwenkit").model_info(repo, revision=revision)
    return sorted(s.rfilename for s in info.siblings or [])


def _head(repo: str, commit: str, path: str) -> RemoteFile:
    """Fallback when the listing lacks hashes: the resolve endpoint's ETag (X-Linked-Etag for LFS)."""
    hub = _hub()
    with hub_errors(f"{repo}/{path}"):
        meta = hub.get_hf_file_metadata(file_url(repo, commit, path), endpoint=endpoint())
    etag = (meta.etag or "").lower()
    if meta.size is None or len(etag) not in (40, 64):
        raise PullError(f"{repo}/{path}: the server reports no usable size and hash, so the download "
                        "could not be verified; is HF_ENDPOINT a Hub mirror?")
    return RemoteFile(path, meta.size, etag if len(etag) == 64 else None, etag if len(etag) == 40 else None)


def file_url(repo: str, commit: str, path: str) -> str:
    from huggingface_hub import hf_hub_url
    return hf_hub_url(repo, path, revision=commit, endpoint=endpoint())


def cached_copy(repo: str, commit: str, path: str) -> Path | None:
    """The file in huggingface_hub's own cache (HF_HOME / HF_HUB_CACHE), if an earlier download left it."""
    from huggingface_hub import try_to_load_from_cache
    found = try_to_load_from_cache(repo, path, revision=commit)
    return Path(found) if isinstance(found, str) else None


def download(repo: str, commit: str, f: RemoteFile, dest: Path, reporter: Reporter) -> None:
    """Append the rest of `f` to `dest`, resuming from its current size with an HTTP Range request."""
    _hub()
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers
    done = dest.stat().st_size if dest.exists() else 0
    if done > f.size:
        dest.unlink()
        done = 0
    reporter.start(f.path, f.size, done)
    try:
        with hub_errors(f"{repo}/{f.path}"), open(dest, "ab") as out:
            http_get(file_url(repo, commit, f.path), out, resume_size=done, expected_size=f.size,
                     headers=build_hf_headers(library_name="qwenkit"),
                     tqdm_class=functools.partial(HubBar, reporter))
    finally:
        reporter.finish()
