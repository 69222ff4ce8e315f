"""A small stdlib HTTP server shared by the viewer and the review.

An app is a list of routes ``(method, regex, handler)``; a handler takes a :class:`Request`
and returns a :class:`Response`. Files are streamed with HTTP Range support so a
``<video>`` element can seek.

    app = ViewerApp(load_runs(["out/run1"]))
    server = make_server(app, "127.0.0.1", 0)        # port 0: any free port
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server_url(server))
"""

from __future__ import annotations

import contextlib
import json
import logging
import mimetypes
import re
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

logger = logging.getLogger(__name__)

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_CHUNK = 256 * 1024
# Pages load their script from /static; inline scripts are refused, so even a caption that
# slipped through escaping could not run.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


@dataclass
class Request:
    method: str
    path: str  # URL-decoded path, without the query
    raw_path: str  # as sent
    query: dict[str, str]
    headers: Any
    body: bytes = b""
    groups: tuple[str, ...] = ()

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except json.JSONDecodeError:
            return None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    file: Path | None = None  # streamed with Range support instead of body


def json_response(data: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(data).encode(), "application/json; charset=utf-8")


def html_response(text: str) -> Response:
    return Response(
        200, text.encode(), "text/html; charset=utf-8", {"Content-Security-Policy": CSP}
    )


def error(status: int, message: str) -> Response:
    return Response(status, message.encode())


Handler = Callable[[Request], Response]


class App:
    """Routes plus the packaged static assets (``/static/<name>``)."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.route("GET", r"/static/([A-Za-z0-9_.-]+)", self._static)

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(pattern + r"\Z"), handler))

    def dispatch(self, req: Request) -> Response:
        allowed = False
        for method, pattern, handler in self.routes:
            m = pattern.match(req.path)
            if m:
                allowed = True
                if method == req.method:
                    req.groups = m.groups()
                    return handler(req)
        return error(405 if allowed else 404, "method not allowed" if allowed else "not found")

    def _static(self, req: Request) -> Response:
        return static_asset(req.groups[0])


def static_asset(name: str) -> Response:
    res = resources.files("diffcap.web") / "static" / name
    if not res.is_file():
        return error(404, "not found")
    ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype.endswith("javascript"):
        ctype += "; charset=utf-8"
    return Response(200, res.read_bytes(), ctype, {"Cache-Control": "no-cache"})


def read_static(name: str) -> str:
    return (resources.files("diffcap.web") / "static" / name).read_text(encoding="utf-8")


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """``bytes=a-b`` -> (a, b) inclusive; None when absent; "bad" when unsatisfiable.

    Only single ranges are served (all a media element asks for).
    """
    if not header:
        return None
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if not m or (not m.group(1) and not m.group(2)):
        return "bad"
    if not m.group(1):  # suffix: the last N bytes
        n = int(m.group(2))
        return (max(0, size - n), size - 1) if n > 0 and size > 0 else "bad"
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size or end < start:
        return "bad"
    return start, min(end, size - 1)


class _Handler(BaseHTTPRequestHandler):
    app: App  # set on the subclass made by make_server
    protocol_version = "HTTP/1.1"
    server_version = "diffcap"
    sys_version = ""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, 1 << 20)) if length else b""
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        req = Request(
            method if method != "HEAD" else "GET",
            unquote(split.path),
            split.path,
            query,
            self.headers,
            body,
        )
        try:
            resp = self.app.dispatch(req)
        except Exception:  # a bug in one handler must not kill the server
            logger.exception("error handling %s %s", method, self.path)
            resp = error(500, "internal error")
        # The browser may cancel mid-response (a <video> does this when it seeks).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._send(resp, head=method == "HEAD")

    def _send(self, resp: Response, head: bool) -> None:
        if resp.file is not None:
            return self._send_file(resp, head)
        self.send_response(resp.status)
        self._headers(resp, len(resp.body))
        if not head:
            self.wfile.write(resp.body)

    def _headers(self, resp: Response, length: int) -> None:
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.end_headers()

    def _send_file(self, resp: Response, head: bool) -> None:
        path = resp.file
        assert path is not None
        size = path.stat().st_size
        rng = parse_range(self.headers.get("Range"), size)
        resp.headers["Accept-Ranges"] = "bytes"
        resp.content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if rng == "bad":
            self.send_response(416)
            resp.headers["Content-Range"] = f"bytes */{size}"
            self._headers(resp, 0)
            return
        start, end = rng if isinstance(rng, tuple) else (0, size - 1)
        if isinstance(rng, tuple):
            self.send_response(206)
            resp.headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        else:
            self.send_response(200)
        self._headers(resp, max(0, end - start + 1))
        if head:
            return
        with path.open("rb") as fh:
            fh.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = fh.read(min(_CHUNK, left))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)


def make_server(app: App, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Bind (not yet serve). Warns when the address is not loopback."""
    if host not in LOOPBACK:
        logger.warning(
            "binding to %s: anyone who can reach this address can read the "
            "captions, keyframes and videos it serves",
            host,
        )
    handler = type("Handler", (_Handler,), {"app": app})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def server_url(server: ThreadingHTTPServer, path: str = "/") -> str:
    host, port = server.server_address[:2]
    host = f"[{host}]" if ":" in str(host) else host
    return f"http://{host}:{port}{path}"


def serve(server: ThreadingHTTPServer, path: str = "/", open_browser: bool = False) -> None:
    """Serve until Ctrl-C; optionally open the page in the default browser."""
    url = server_url(server, path)
    logger.info("serving on %s (Ctrl-C to stop)", url)
    if open_browser:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
