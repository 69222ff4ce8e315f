"""A loopback fake of the Hugging Face hub, serving repos from local folders.

Just the routes that ``huggingface_hub`` (2.x) and ``transformers`` (5.x) call to load a model
and its processor by repo id, in the formats their client code parses:

- ``HEAD``/``GET /{repo}/resolve/{rev}/{path}``: the file, with ``X-Repo-Commit``, ``ETag``
  (the git blob id, quoted), ``Content-Length``; ``Range: bytes=a-[b]`` gets a 206.
- ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}``: model info JSON
  (``id``, ``sha``, ``siblings``).
- ``GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=``: the tree listing (one page).
- ``GET /api/agent-harnesses``: an empty registry (the client's user-agent detection).

Errors carry the ``X-Error-Code`` header the client maps to its exceptions: ``RepoNotFound``,
``RevisionNotFound``, ``EntryNotFound`` (404; with ``X-Repo-Commit`` for a missing file, so the
client caches its absence). Revisions: ``main`` or the commit id (a hash of the folder's files).
Dataset repos are served the same way under ``/datasets/{repo}/resolve/...`` and
``/api/datasets/{repo}...`` (one namespace: a repo id is a model and a dataset alike).
No xet, no LFS pointers, no redirects, no auth.

    with FakeHub({"org/tiny-llava": folder}) as hub:
        use_fake_hub(monkeypatch, hub.endpoint, cache_dir)   # HF_ENDPOINT & co, also in-process
        ...                                                  # load "org/tiny-llava"
        hub.requests                                         # [("HEAD", "/org/...json"), ...]
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

_RESOLVE = re.compile(r"^/(?:datasets/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_API = re.compile(
    r"^/api/(?:models|datasets)/(?P<repo>[^/]+/[^/]+)"
    r"(?:/revision/(?P<rev>[^/]+)|/tree/(?P<tree>[^/]+)(?:/(?P<path>.+))?)?$"
)


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class _Repo:
    """A folder's files (read once), their git blob ids and a commit id derived from them."""

    def __init__(self, folder: Path) -> None:
        self.files = {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }
        self.oids = {name: _git_blob_id(data) for name, data in self.files.items()}
        self.sha = hashlib.sha1(json.dumps(self.oids, sort_keys=True).encode()).hexdigest()

    def tree(self, under: str, recursive: bool) -> list[dict[str, Any]] | None:
        prefix = f"{under.strip('/')}/" if under.strip("/") else ""
        entries: dict[str, dict[str, Any]] = {}
        for name in self.files:
            if not name.startswith(prefix):
                continue
            parts = name[len(prefix) :].split("/")
            for depth in range(1, len(parts)):  # the folders on the way
                if recursive or depth == 1:
                    path = prefix + "/".join(parts[:depth])
                    entries[path] = {"type": "directory", "oid": "0" * 40, "size": 0, "path": path}
            if recursive or len(parts) == 1:
                size = len(self.files[name])
                entries[name] = {"type": "file", "oid": self.oids[name], "size": size, "path": name}
        return list(entries.values()) if entries or not prefix else None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        with self.server.lock:
            self.server.hub.requests.append((self.command, url.path))
        if m := _RESOLVE.match(url.path):
            return self._resolve(m["repo"], unquote(m["rev"]), unquote(m["path"]))
        if url.path == "/api/agent-harnesses":  # user-agent detection, best-effort
            return self._json({"standardEnvVars": [], "harnesses": {}})
        if not (m := _API.match(url.path)) or self.command != "GET":
            return self._send(404, b"not found", {})
        if (repo := self._repo(m["repo"], unquote(m["tree"] or m["rev"] or "main"))) is None:
            return None
        if m["tree"] is None:
            siblings = [{"rfilename": name} for name in repo.files]
            return self._json({"id": m["repo"], "sha": repo.sha, "siblings": siblings})
        recursive = parse_qs(url.query).get("recursive", ["false"])[0].lower() == "true"
        if (entries := repo.tree(unquote(m["path"] or ""), recursive)) is None:
            return self._error("EntryNotFound", {"X-Repo-Commit": repo.sha})
        return self._json(entries)

    def _repo(self, repo_id: str, rev: str) -> _Repo | None:
        repo = self.server.hub.repos.get(repo_id)
        if repo is None:
            self._error("RepoNotFound", {})
        elif rev not in ("main", repo.sha):
            self._error("RevisionNotFound", {})
            repo = None
        return repo

    def _resolve(self, repo_id: str, rev: str, path: str) -> None:
        if (repo := self._repo(repo_id, rev)) is None:
            return
        if (data := repo.files.get(path)) is None:
            return self._error("EntryNotFound", {"X-Repo-Commit": repo.sha})
        headers = {"X-Repo-Commit": repo.sha, "ETag": f'"{repo.oids[path]}"'}
        status = 200
        rng = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if rng and int(rng[1]) < len(data):
            start, end = int(rng[1]), min(int(rng[2] or len(data) - 1), len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start : end + 1], 206
        self._send(status, data, {**headers, "Accept-Ranges": "bytes"}, "application/octet-stream")

    def _error(self, code: str, headers: dict[str, str]) -> None:
        headers = {"X-Error-Code": code, "X-Error-Message": code, **headers}
        self._send(404, json.dumps({"error": code}).encode(), headers)

    def _json(self, obj: object) -> None:
        self._send(200, json.dumps(obj).encode(), {})

    def _send(self, status: int, body: bytes, headers: dict[str, str], ctype: str = "") -> None:
        self.send_response(status)
        for key, value in {**headers, "Content-Type": ctype or "application/json"}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hub: FakeHub
    lock: threading.Lock


class FakeHub:
    """Serve ``{"org/name": folder}`` on 127.0.0.1 (an ephemeral port) until :meth:`stop`."""

    def __init__(self, repos: dict[str, Path]) -> None:
        self.repos = {repo_id: _Repo(Path(folder)) for repo_id, folder in repos.items()}
        #: (method, path) of every request received, in order.
        self.requests: list[tuple[str, str]] = []
        #: ``http://127.0.0.1:PORT`` once started (kept after :meth:`stop`).
        self.endpoint = ""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeHub:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.hub, self._server.lock = self, threading.Lock()
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def use_fake_hub(
    monkeypatch: pytest.MonkeyPatch, endpoint: str, cache_dir: Path, offline: bool = False
) -> None:
    """Point the hub clients at ``endpoint`` and ``cache_dir`` (``HF_HUB_OFFLINE`` per ``offline``),
    in the environment and in the module constants ``huggingface_hub`` read at import; restored
    when ``monkeypatch`` undoes."""
    from huggingface_hub import constants

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HOME", str(cache_dir))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache_dir / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    template = endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache_dir / "hub"))
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(cache_dir / ".agent_harnesses.json"))
    try:  # transformers keeps one HfApi, with the endpoint of the time it was made
        import transformers.utils.hub as tf_hub

        monkeypatch.setattr(tf_hub, "_hf_api", None)
    except ImportError:
        pass
