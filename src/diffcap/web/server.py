"""Serving the viewer and the review: Starlette routes behind :class:`~diffcap.web.guard.Guard`,
run by uvicorn on a socket bound here (loopback by default).

An app is a list of Starlette routes plus the packaged static assets. Files go out through
Starlette's ``FileResponse`` (single and multiple HTTP ranges, 416 past the end), so a
``<video>`` element can seek; uvicorn answers malformed requests (``Content-Length: abc``)
with 400 itself.

    app = ViewerApp(load_runs(["out/run1"]))
    server = make_server(app, "127.0.0.1", 0)         # port 0: any free port
    server.start()                                     # in a thread; or serve(server)
    print(server.url())
    server.stop()
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import socket
import threading
import time
import webbrowser
from collections.abc import Iterable
from importlib import resources
from typing import Any

from diffcap._deps import require
from diffcap.errors import DiffcapError
from diffcap.web.guard import DEFAULT_MAX_BODY, LOOPBACK_NAMES, Guard, allowed_hosts

require("starlette", extra="web", purpose="diffcap view / review")
require("uvicorn", extra="web", purpose="diffcap view / review")

import uvicorn  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import HTMLResponse, PlainTextResponse, Response  # noqa: E402
from starlette.routing import BaseRoute, Route  # noqa: E402

from diffcap.web.protocol import HEADER_TIMEOUT_S, header_deadline_protocol  # noqa: E402

logger = logging.getLogger(__name__)

LOOPBACK = LOOPBACK_NAMES
# Pages load their script from /static; inline scripts are refused, so even a caption that
# slipped through escaping could not run.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'none'"
)
BACKLOG = 2048  # a burst of hundreds of connections queues instead of being reset


def html_response(text: str) -> HTMLResponse:
    return HTMLResponse(text, headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store"})


def error(status: int, message: str) -> PlainTextResponse:
    return PlainTextResponse(message, status_code=status)


def static_asset(request: Request) -> Response:
    name = request.path_params["name"]
    res = resources.files("diffcap.web") / "static" / name
    if not res.is_file():
        return error(404, "not found")
    ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype.endswith("javascript"):
        ctype += "; charset=utf-8"
    return Response(res.read_bytes(), media_type=ctype, headers={"Cache-Control": "no-cache"})


class App:
    """Routes of one page set; :meth:`asgi` adds the static assets and builds the app."""

    routes: list[BaseRoute]

    def __init__(self) -> None:
        self.routes = []

    def route(self, method: str, path: str, endpoint: Any) -> None:
        self.routes.append(Route(path, endpoint, methods=[method]))

    def asgi(self) -> Starlette:
        static = Route("/static/{name:str}", static_asset, methods=["GET"])
        return Starlette(routes=[*self.routes, static])


class WebServer:
    """A uvicorn server on a socket that is already listening (so the URL is known at once)."""

    def __init__(
        self,
        app: Any,
        sock: socket.socket,
        hosts: frozenset[str],
        header_timeout_s: float = HEADER_TIMEOUT_S,
    ) -> None:
        self.sock = sock
        self.hosts = hosts
        self.address: tuple[str, int] = sock.getsockname()[:2]
        config = uvicorn.Config(
            app,
            # h11, with a deadline for request headers: slow-header connections are closed
            http=header_deadline_protocol(header_timeout_s),
            lifespan="off",
            log_config=None,
            access_log=False,
            backlog=BACKLOG,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def url(self, path: str = "/") -> str:
        host, port = self.address
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}{path}"

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`stop` (or Ctrl-C in the main thread)."""
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def start(self) -> WebServer:
        """Serve in a daemon thread; returns once the server accepts requests."""
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                raise DiffcapError("the web server did not start within 10 s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sock.close()


def make_server(
    app: App,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    allow_hosts: Iterable[str] = (),
    max_body: int = DEFAULT_MAX_BODY,
    header_timeout_s: float = HEADER_TIMEOUT_S,
) -> WebServer:
    """Bind (not yet serve). Warns when the address is not loopback.

    Requests must name the server by a loopback name, the bound address or one of
    ``allow_hosts`` in their ``Host`` header (DNS-rebinding protection); a request whose
    headers do not arrive in full within ``header_timeout_s`` has its connection closed."""
    if host not in LOOPBACK:
        logger.warning(
            "binding to %s: anyone who can reach this address can read the "
            "captions, keyframes and videos it serves",
            host,
        )
    hosts = allowed_hosts(host, allow_hosts)
    if host in ("0.0.0.0", "::", "") and not list(allow_hosts):
        logger.warning(
            "requests must name a loopback host; add the names others use with --allow-host NAME"
        )
    sock = _bind(host, port)
    return WebServer(Guard(app.asgi(), hosts, max_body), sock, hosts, header_timeout_s)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def server_url(server: WebServer, path: str = "/") -> str:
    return server.url(path)


def serve(server: WebServer, path: str = "/", open_browser: bool = False) -> None:
    """Serve until Ctrl-C; optionally open the page in the default browser."""
    url = server.url(path)
    logger.info("serving on %s (Ctrl-C to stop)", url)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.sock.close()
