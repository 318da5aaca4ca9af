"""A ModelScope Hub look-alike on loopback: the two legacy `/api/v1` endpoints the ModelScope client's
`snapshot_download` uses (the recursive file listing with sizes and sha256s, and the file download, which
sends LFS files through a 302 to another origin, as the real Hub does to its object store), with Range
requests. Every other path answers 404 and is recorded in `unknown`, so a test sees any new call."""
import hashlib
import json
import re
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from tests.store import loopback

DEFAULT_BRANCH = "master"


@dataclass
class RepoFile:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class Repo:
    commit: str
    files: dict[str, RepoFile]


@dataclass
class FakeModelScope:
    repos: dict[str, Repo] = field(default_factory=dict)
    log: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)   # method, path, query
    served: list[tuple[str, str | None]] = field(default_factory=list)         # file name, Range
    unknown: list[str] = field(default_factory=list)
    drops: dict[str, int] = field(default_factory=dict)    # file name -> cut its next download after N bytes
    url: str = ""

    def add_repo(self, repo_id: str, files: dict[str, bytes], lfs: set[str]) -> Repo:
        commit = hashlib.sha1(repo_id.encode()).hexdigest()
        self.repos[repo_id] = Repo(commit, {p: RepoFile(d, p in lfs) for p, d in files.items()})
        return self.repos[repo_id]

    def downloads(self) -> list[str]:
        return [name for name, _ in self.served]

    def start(self) -> "FakeModelScope":
        self.server, self.url = loopback.serve(_Handler, self)
        return self

    def stop(self) -> None:
        loopback.shut(self.server)


FILES = re.compile(r"^/api/v1/models/(?P<repo>[^/]+/[^/]+)/repo/files$")
FILE = re.compile(r"^/api/v1/models/(?P<repo>[^/]+/[^/]+)/repo$")
OSS = re.compile(r"^/oss/(?P<sha>[0-9a-f]{64})$")
RANGE = re.compile(r"bytes=(\d+)-(\d*)")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: FakeModelScope

    def log_message(self, *args) -> None:
        pass

    def do_HEAD(self):
        self._route(head=True)

    def do_GET(self):
        self._route(head=False)

    def _route(self, head: bool) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.hub.log.append((self.command, url.path, query))
        if m := FILES.match(url.path):
            if repo := self._repo(m["repo"], query.get("Revision")):
                self._json({"Files": [_entry(p, f, repo.commit) for p, f in repo.files.items()]})
        elif m := FILE.match(url.path):
            if repo := self._repo(m["repo"], query.get("Revision")):
                self._file(repo, query.get("FilePath", ""), head)
        elif (m := OSS.match(url.path)) and (found := self._blob(m["sha"])):
            self._content(*found, head)
        else:
            self.hub.unknown.append(url.path)
            self._error(404, "not found")

    def _repo(self, repo_id: str, revision: str | None) -> Repo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, f"model {repo_id} does not exist")
        elif revision not in (DEFAULT_BRANCH, repo.commit):
            self._error(404, f"revision {revision} does not exist")
            return None
        return repo

    def _blob(self, sha: str) -> tuple[str, RepoFile] | None:
        return next(((p, f) for r in self.hub.repos.values() for p, f in r.files.items() if f.sha256 == sha),
                    None)

    def _file(self, repo: Repo, name: str, head: bool) -> None:
        f = repo.files.get(name)
        if f is None:
            return self._error(404, f"file {name} does not exist")
        if not f.lfs:
            return self._content(name, f, head)
        self.send_response(302)
        self.send_header("Location", f"http://localhost:{self.server.server_address[1]}/oss/{f.sha256}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _content(self, name: str, f: RepoFile, head: bool) -> None:
        if not head:
            self.hub.served.append((name, self.headers.get("Range")))
        start, end = 0, len(f.data) - 1
        rng = RANGE.fullmatch(self.headers.get("Range") or "")
        self.send_response(206 if rng else 200)
        if rng:
            start, end = int(rng[1]), int(rng[2] or end)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(f.data)}")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        if head:
            return
        body = f.data[start:end + 1]
        if (cut := self.hub.drops.pop(name, None)) is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

    def _json(self, data: dict) -> None:
        self._send(200, {"Code": 200, "Data": data, "Message": "success", "Success": True})

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"Code": status, "Message": message, "Success": False})

    def _send(self, status: int, obj: dict) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _entry(path: str, f: RepoFile, commit: str) -> dict:
    return {"Name": path.rsplit("/", 1)[-1], "Path": path, "Type": "blob", "Size": len(f.data),
            "Sha256": f.sha256, "IsLFS": f.lfs, "Revision": commit}
