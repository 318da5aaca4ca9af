"""A Hugging Face Hub look-alike on loopback: the endpoints and headers huggingface_hub uses to list a repo
and download from it (302 to a CDN for LFS files, ETag / X-Linked-Etag / X-Repo-Commit, Range requests),
plus scripted faults: a connection cut midway, an HTTP error, corrupted bytes."""
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tests.store import loopback


@dataclass
class RepoFile:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def git_oid(self) -> str:
        return hashlib.sha1(f"blob {len(self.data)}\0".encode() + self.data).hexdigest()


@dataclass
class Repo:
    commit: str
    files: dict[str, RepoFile]


@dataclass
class FakeHub:
    repos: dict[str, Repo] = field(default_factory=dict)
    log: list[tuple[str, str, str | None]] = field(default_factory=list)   # method, path, Range
    served: list[tuple[str, str | None]] = field(default_factory=list)     # file name, Range
    faults: dict[str, list] = field(default_factory=dict)    # file name -> actions for its next GETs
    corrupt: set[str] = field(default_factory=set)           # file names served with one byte flipped
    delay: float = 0.0                                       # seconds per 64 KiB sent
    file_metadata: bool = True                               # sizes and hashes in the repo listing
    url: str = ""

    def add_repo(self, repo_id: str, files: dict[str, bytes], lfs: set[str]) -> Repo:
        commit = hashlib.sha1(repo_id.encode()).hexdigest()
        self.repos[repo_id] = Repo(commit, {p: RepoFile(d, p in lfs) for p, d in files.items()})
        return self.repos[repo_id]

    def downloads(self, name: str) -> list[str | None]:
        """The Range header of every GET that served `name`'s bytes (None for a full download)."""
        return [rng for n, rng in self.served if n == name]

    def start(self) -> "FakeHub":
        self.server, self.url = loopback.serve(_Handler, self)
        return self

    def stop(self) -> None:
        loopback.shut(self.server)


API_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?$")
API_PATHS = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/(?:paths-info|tree)/(?P<rev>[^/]+)$")
RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
CDN = re.compile(r"^/cdn/(?P<sha>[0-9a-f]{64})$")
RANGE = re.compile(r"bytes=(\d+)-(\d*)")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: FakeHub

    def log_message(self, *args) -> None:
        pass

    def do_HEAD(self):
        self._route(head=True)

    def do_GET(self):
        self._route(head=False)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._route(head=False)

    def _route(self, head: bool) -> None:
        path = self.path.split("?")[0]
        self.hub.log.append((self.command, path, self.headers.get("Range")))
        if m := API_PATHS.match(path):
            repo = self._repo(m["repo"], m["rev"])
            if repo:
                self._json([_tree_entry(p, f) for p, f in repo.files.items()], repo.commit)
        elif m := API_INFO.match(path):
            repo = self._repo(m["repo"], m["rev"] or "main")
            if repo:
                siblings = [_sibling(p, f) if self.hub.file_metadata else {"rfilename": p}
                            for p, f in repo.files.items()]
                self._json({"id": m["repo"], "sha": repo.commit, "siblings": siblings}, repo.commit)
        elif m := RESOLVE.match(path):
            repo = self._repo(m["repo"], m["rev"])
            if repo:
                self._resolve(repo, m["path"], head)
        elif m := CDN.match(path):
            found = [(p, f) for r in self.hub.repos.values() for p, f in r.files.items()
                     if f.sha256 == m["sha"]]
            if not found:
                return self._error(404, "EntryNotFound")
            self._content(*found[0], head=head)
        else:
            self._error(404, "RepoNotFound")

    def _repo(self, repo_id: str, rev: str) -> Repo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound")
        elif rev not in ("main", repo.commit):
            self._error(404, "RevisionNotFound")
            return None
        return repo

    def _resolve(self, repo: Repo, name: str, head: bool) -> None:
        f = repo.files.get(name)
        if f is None:
            return self._error(404, "EntryNotFound", repo.commit)
        if f.lfs:
            self.send_response(302)
            # another origin, as the Hub's CDN is: huggingface_hub reads the metadata off this response
            port = self.server.server_address[1]
            self.send_header("Location", f"http://localhost:{port}/cdn/{f.sha256}")
            self.send_header("ETag", f'"{f.sha256}"')
            self.send_header("X-Linked-Etag", f'"{f.sha256}"')
            self.send_header("X-Linked-Size", str(len(f.data)))
            self.send_header("X-Repo-Commit", repo.commit)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._content(name, f, head, {"ETag": f'"{f.git_oid}"', "X-Repo-Commit": repo.commit})

    def _content(self, name: str, f: RepoFile, head: bool, headers: dict | None = None) -> None:
        actions = self.hub.faults.get(name) or []
        action = actions.pop(0) if actions and not head else None
        if not head:
            self.hub.served.append((name, self.headers.get("Range")))
        if isinstance(action, int):
            return self._error(action, "ServerError")
        data = f.data
        if name in self.hub.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start, end = 0, len(data) - 1
        rng = RANGE.fullmatch(self.headers.get("Range") or "")
        self.send_response(206 if rng else 200)
        if rng:
            start, end = int(rng[1]), int(rng[2] or end)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        if head:
            return
        body = data[start:end + 1]
        cut = action[1] - start if isinstance(action, tuple) and action[0] == "drop" else None
        for i in range(0, len(body), 1 << 16):
            chunk = body[i:i + (1 << 16)]
            if cut is not None and i + len(chunk) >= cut:
                self.wfile.write(chunk[:max(cut - i, 0)])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(chunk)
            if self.hub.delay:
                time.sleep(self.hub.delay)

    def _json(self, obj, commit: str) -> None:
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, code: str, commit: str | None = None) -> None:
        body = json.dumps({"error": code}).encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _sibling(path: str, f: RepoFile) -> dict:
    d = {"rfilename": path, "size": len(f.data), "blobId": f.git_oid}
    if f.lfs:
        d["lfs"] = {"sha256": f.sha256, "size": len(f.data), "pointerSize": 134}
    return d


def _tree_entry(path: str, f: RepoFile) -> dict:
    d = {"type": "file", "path": path, "size": len(f.data), "oid": f.git_oid}
    if f.lfs:
        d["lfs"] = {"oid": f.sha256, "size": len(f.data), "pointerSize": 134}
    return d
