"""The ASGI guard in front of every diffcap page: Host allow-list, Origin check, body limit,
security headers. Pure ASGI (no framework), so it sees every request before any route does.

    app = Guard(starlette_app, hosts={"127.0.0.1", "localhost"}, max_body=64 * 1024)

- **Host**: a request whose ``Host`` names no allowed host is refused (400) — a page on
  another site that resolves its name to 127.0.0.1 (DNS rebinding) gets nothing.
- **Origin** (state-changing methods): a browser sends ``Origin`` with every POST; it must be
  this very server (``http://`` + the Host it asked for), else 403. ``Sec-Fetch-Site`` from
  another site is refused too, and a body must be ``application/json`` (415), which no
  cross-site form or "simple" fetch can send without a preflight this server never answers.
- **Body limit**: a declared ``Content-Length`` over ``max_body`` is refused (413) before
  anything is read; a chunked body is counted as it arrives and refused the same way.
  Headers over ``max_header_bytes`` in all are refused (431).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})
DEFAULT_MAX_BODY = 64 * 1024  # a vote is ~100 bytes
MAX_HEADER_BYTES = 32 * 1024

# Sent with every response. CORP keeps other sites from embedding media/keyframes with
# <img>/<video> (no-cors loads); the pages' own CSP is set per page.
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


def host_name(value: str) -> str | None:
    """``Host`` header -> lower-case host name without port; ``[::1]:80`` -> ``::1``;
    None when it is malformed."""
    value = value.strip().lower()
    if not value or any(c in value for c in " /\\@?#"):
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0 or (value[end + 1 :] and not value[end + 1 :].startswith(":")):
            return None
        name, port = value[1:end], value[end + 2 :]
    else:
        name, _, port = value.partition(":")
    if port and not port.isdigit():
        return None
    return name.rstrip(".") or None


def allowed_hosts(bound: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Loopback names, the bound address (unless a wildcard) and ``extra`` names."""
    names = set(LOOPBACK_NAMES)
    if bound not in WILDCARDS:
        names.add(bound.strip("[]").lower())
    names.update(h.strip().strip("[]").lower().rstrip(".") for h in extra if h.strip())
    return frozenset(names)


class Guard:
    """ASGI middleware; see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        hosts: Iterable[str],
        max_body: int = DEFAULT_MAX_BODY,
        max_header_bytes: int = MAX_HEADER_BYTES,
    ) -> None:
        self.app = app
        self.hosts = frozenset(hosts)
        self.max_body = max_body
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if sum(len(k) + len(v) + 4 for k, v in scope["headers"]) > self.max_header_bytes:
            await _plain(send, 431, "request headers too large")
            return
        names = [k.lower() for k, _ in scope["headers"]]
        if any(names.count(n) > 1 for n in (b"host", b"origin", b"content-type")):
            await _plain(send, 400, "repeated Host, Origin or Content-Type header")
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._check(scope["method"], headers)
        if refusal is not None:
            await _plain(send, *refusal)
            return
        # The whole body is read here, counted, and handed to the app in one piece: a body
        # over the limit (declared or chunked) is refused before any route sees it.
        body, status = await self._read_body(receive)
        if body is None:
            if status:
                await _plain(send, status, "request body too large")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, replay, send_with_headers)

    async def _read_body(self, receive: Receive) -> tuple[bytes | None, int]:
        """(body, 0); (None, 413) when too large; (None, 0) when the client went away."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None, 0
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None, 413
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks), 0

    def _check(self, method: str, headers: dict[str, str]) -> tuple[int, str] | None:
        host = headers.get("host", "")
        if host_name(host) not in self.hosts:
            return 400, "host not allowed (pass --allow-host NAME to serve under another name)"
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return (400, "bad Content-Length") if not length.isdigit() else (413, "too large")
        if method in SAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is not None and origin.lower() != f"http://{host.lower()}":
            return 403, "cross-origin request refused"
        if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return 403, "cross-site request refused"
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return 415, "send the body as application/json"
        return None


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *SECURITY_HEADERS,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
