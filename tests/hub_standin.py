"""A stand-in for the Hugging Face Hub on 127.0.0.1, for ``HF_ENDPOINT`` in tests.

It answers just the requests huggingface_hub 2.4.0 makes for:
- ``hf_hub_download``: ``HEAD``/``GET /{repo}/resolve/{revision}/{path}`` with ``X-Repo-Commit``, the sha256
  as ``ETag`` (as the Hub does for LFS files), ``Content-Length`` and byte ranges (``Range: bytes=N-``, how
  it resumes a dropped connection);
- ``HfApi.create_repo`` and ``HfApi.create_commit`` (``upload_folder`` too): ``POST /api/repos/create``,
  ``/api/validate-yaml`` (a README.md with front matter), ``/api/models/{repo}/preupload/{rev}`` (every file
  "regular", so its bytes come inline in the commit) and ``/api/models/{repo}/commit/{rev}`` (the ndjson commit);
- ``HfApi.model_info`` / ``space_info`` / ``repo_info``: ``GET /api/models/{repo}[/revision/{rev}]`` (id, sha,
  siblings), and ``HfApi.whoami``: ``GET /api/whoami-v2`` (user ``WHOAMI``, whatever the token).

Spaces and datasets work the same under ``/api/spaces/`` and ``/api/datasets/``; the stand-in keys them as
their URLs do, ``spaces/OWNER/NAME`` (``hub.files("spaces/OWNER/NAME")``), a model repository as ``OWNER/NAME``.

Faults to inject: ``cut[path] = n`` sends n bytes of the next GET of that file and drops the connection;
``fail_ranges`` answers 503 to ranged GETs (a resume that cannot succeed); ``corrupt`` serves files with
one byte flipped under their true headers. ``requests`` records (method, path, Range header).

A hostile Hub: ``etag`` replaces every file's ETag (e.g. ``'"../../../x"'``, which huggingface_hub would make a
path of), ``repo_commit`` every X-Repo-Commit (e.g. ``"../../outside"``); ``flood[path] = n`` streams n zero bytes
instead of the file, without a Content-Length (only a closed connection ends it) unless ``flood_announced``,
and ``sent[path]`` counts the body bytes written before the client hung up (socket buffers included).
Malformed indexes and pickle heads are ordinary commits.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import pytest

CHUNK = 50_000  # the download chunk size under the ``hub`` fixture
RESOLVE = re.compile(r"^/(?P<repo>(?:spaces/|datasets/)?[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
API = re.compile(r"^/api/(?P<kind>models|spaces|datasets)/(?P<repo>[^/]+/[^/]+)/(?P<op>preupload|commit)/(?P<rev>[^/]+)$")
INFO = re.compile(r"^/api/(?P<kind>models|spaces|datasets)/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?$")
WHOAMI = "standin-user"


def repo_key(kind: str, repo: str) -> str:
    """How the stand-in names a repository: as its URLs do (a model bare, ``spaces/`` or ``datasets/`` before others)."""
    return repo if kind in ("models", "model") else f"{kind.rstrip('s')}s/{repo}"


class HubStandin:
    def __init__(self) -> None:
        self.commits: dict[str, dict[str, bytes]] = {}  # commit id -> files
        self.branches: dict[str, dict[str, str]] = {}  # repo -> {branch: commit id}
        self.requests: list[tuple[str, str, str | None]] = []
        self.cut: dict[str, int] = {}
        self.fail_ranges = False
        self.corrupt: set[str] = set()
        self.etag: str | None = None
        self.repo_commit: str | None = None
        self.flood: dict[str, int] = {}
        self.flood_announced = False
        self.sent: dict[str, int] = {}
        self.messages: list[str] = []  # commit summaries, oldest first
        self._lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_HEAD(self):
                hub._resolve(self, body=False)

            def do_GET(self):
                hub._resolve(self, body=True)

            def do_POST(self):
                hub._post(self)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.hub = self  # for _error's headers
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # ---------------------------------------------------------------------------------------------
    # repositories

    def commit(self, repo: str, files: dict[str, bytes], branch: str = "main", deleted: tuple[str, ...] = ()) -> str:
        """A new commit on ``branch`` holding its parent's files updated with ``files``; returns its id."""
        with self._lock:
            parent = self.branches.setdefault(repo, {}).get(branch)
            tree = {**(self.commits[parent] if parent else {}), **files}
            for path in deleted:
                tree.pop(path, None)
            oid = hashlib.sha1(
                json.dumps([repo, parent, sorted((k, hashlib.sha256(v).hexdigest()) for k, v in tree.items())]).encode()
            ).hexdigest()
            self.commits[oid] = tree
            self.branches[repo][branch] = oid
            return oid

    def files(self, repo: str, revision: str = "main") -> dict[str, bytes]:
        return dict(self.commits[self._commit_of(repo, revision)])

    def _commit_of(self, repo: str, revision: str) -> str | None:
        if repo not in self.branches:
            return None
        if revision in self.branches[repo]:
            return self.branches[repo][revision]
        return revision if revision in self.commits and revision in self.branches[repo].values() else None

    # ---------------------------------------------------------------------------------------------
    # downloads

    def _resolve(self, h: BaseHTTPRequestHandler, body: bool) -> None:
        path = urlsplit(h.path).path
        self.requests.append((h.command, path, h.headers.get("Range")))
        if body and (path == "/api/whoami-v2" or INFO.match(path)):
            return self._api_get(h, path)
        m = RESOLVE.match(path)
        if not m:
            return _error(h, 404, "RepoNotFound")
        repo, rev, name = m["repo"], unquote(m["rev"]), unquote(m["path"])
        if repo not in self.branches:
            return _error(h, 404, "RepoNotFound")
        oid = self._commit_of(repo, rev)
        if oid is None:
            return _error(h, 404, "RevisionNotFound")
        data = self.commits[oid].get(name)
        if data is None:
            return _error(h, 404, "EntryNotFound", oid)
        sent = bytearray(data)
        if path in self.corrupt and sent:
            sent[len(sent) // 2] ^= 0xFF
        start = 0
        ranged = h.headers.get("Range")
        if body and ranged:
            if self.fail_ranges:
                return _error(h, 503, None, oid)
            start = int(re.match(r"bytes=(\d+)-", ranged)[1])
        if path in self.flood:
            return self._flood(h, path, oid, body)
        h.send_response(206 if start else 200)
        h.send_header("X-Repo-Commit", self.repo_commit or oid)
        h.send_header("ETag", self.etag or f'"{hashlib.sha256(data).hexdigest()}"')
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(len(data) - start))
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.end_headers()
        if not body:
            return
        cut = self.cut.pop(path, None) if not start else None
        h.wfile.write(bytes(sent[start:cut]))
        h.wfile.flush()
        if cut is not None:
            h.close_connection = True

    def _api_get(self, h: BaseHTTPRequestHandler, path: str) -> None:
        if path == "/api/whoami-v2":
            return _json(h, 200, {"type": "user", "name": WHOAMI, "auth": {"type": "access_token"}})
        m = INFO.match(path)
        repo = repo_key(m["kind"], m["repo"])
        oid = self._commit_of(repo, unquote(m["rev"] or "main"))
        if oid is None:
            return _error(h, 404, "RepoNotFound" if repo not in self.branches else "RevisionNotFound")
        _json(h, 200, {"id": m["repo"], "sha": oid, "private": False,
                       "siblings": [{"rfilename": name} for name in sorted(self.commits[oid])]})

    def _flood(self, h: BaseHTTPRequestHandler, path: str, oid: str, body: bool) -> None:
        """``flood[path]`` zero bytes, ended by closing the connection; stops when the client hangs up."""
        h.send_response(200)
        h.send_header("X-Repo-Commit", self.repo_commit or oid)
        h.send_header("ETag", self.etag or '"' + "0" * 64 + '"')
        h.send_header("Content-Type", "application/octet-stream")
        if self.flood_announced:
            h.send_header("Content-Length", str(self.flood[path]))
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        if not body:
            return
        self.sent[path] = 0
        block = bytes(1 << 16)
        try:
            while self.sent[path] < self.flood[path]:
                h.wfile.write(block)
                h.wfile.flush()
                self.sent[path] += len(block)
        except OSError:  # the client stopped reading and closed the connection
            pass

    # ---------------------------------------------------------------------------------------------
    # uploads

    def _post(self, h: BaseHTTPRequestHandler) -> None:
        path = urlsplit(h.path).path
        self.requests.append(("POST", path, None))
        payload = h.rfile.read(int(h.headers.get("Content-Length", 0)))
        if path == "/api/repos/create":
            spec = json.loads(payload)
            repo = repo_key(spec.get("type", "model"), f"{spec['organization']}/{spec['name']}")
            if repo in self.branches:
                # the Hub names the repository in its 409 too: create_repo(exist_ok=True) returns that URL
                return _json(h, 409, {"error": f"You already created this {spec.get('type', 'model')} repo",
                                      "url": f"{self.url}/{repo}"})
            self.branches[repo] = {}
            return _json(h, 200, {"url": f"{self.url}/{repo}"})
        if path == "/api/validate-yaml":
            return _json(h, 200, {"errors": [], "warnings": []})
        m = API.match(path)
        repo = repo_key(m["kind"], m["repo"]) if m else None
        if repo not in self.branches:
            return _error(h, 404, "RepoNotFound")
        if m["op"] == "preupload":
            files = json.loads(payload)["files"]
            return _json(h, 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                             "oid": None} for f in files]})
        added, deleted, summary = {}, [], ""
        for line in payload.decode().splitlines():
            item = json.loads(line)
            if item["key"] == "header":
                summary = item["value"]["summary"]
            elif item["key"] == "file":
                added[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            elif item["key"] == "deletedFile":
                deleted.append(item["value"]["path"])
            else:
                return _json(h, 400, {"error": f"the stand-in does not implement {item['key']}"})
        oid = self.commit(repo, added, unquote(m["rev"]), tuple(deleted))
        self.messages.append(summary)
        _json(h, 200, {"commitUrl": f"{self.url}/{repo}/commit/{oid}", "commitOid": oid, "pullRequestUrl": None})


def _error(h: BaseHTTPRequestHandler, status: int, code: str | None, commit: str | None = None) -> None:
    body = json.dumps({"error": code or "unavailable"}).encode()
    h.send_response(status)
    if code:
        h.send_header("X-Error-Code", code)
    if commit:
        h.send_header("X-Repo-Commit", h.server.hub.repo_commit or commit)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


def _json(h: BaseHTTPRequestHandler, status: int, obj: dict) -> None:
    body = json.dumps(obj).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


@pytest.fixture(name="hub")
def hub_fixture(tmp_path, monkeypatch) -> Iterator[HubStandin]:
    """A running stand-in as HF_ENDPOINT, online, with an empty Hugging Face cache of the test's own."""
    import huggingface_hub.constants as constants

    standin = HubStandin()
    monkeypatch.setenv("HF_ENDPOINT", standin.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # read at import, where conftest made it "1"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    # huggingface_hub hands over (and can resume from) whole chunks of 10 MiB; small files need small chunks
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", CHUNK)
    yield standin
    standin.close()
