"""The OpenAI wire format: request bodies out, answers in, and how requests and endpoints
are named in messages (split out of :mod:`diffcap.models.openai_backend`)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sys
import urllib.parse
from collections.abc import Awaitable
from typing import Any, TypeVar

import openai

from diffcap.errors import ConfigError, RequestFailed
from diffcap.models.base import ModelRequest
from diffcap.timeline import Usage


def dumps_body(payload: dict[str, Any]) -> bytes:
    """JSON as the SDK sends it (UTF-8, compact, no NaN)."""
    try:
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise RequestFailed(
            f"cannot serialise the request as JSON: {exc}",
            retryable=False,
            hint="options and extra_body values must be JSON values (no NaN)",
        ) from exc
    return text.encode()


def decode_body(content: bytes) -> dict[str, Any]:
    """The JSON object of a 200 answer; anything else (a proxy's error page, a truncated body)
    is usually transient, so retryable, as the SDK's JSONDecodeError was."""
    try:
        data = json.loads(content)
    except ValueError as exc:  # JSONDecodeError, or bytes that are no Unicode at all
        raise RequestFailed(f"unparseable response body: {exc}", retryable=True) from exc
    if not isinstance(data, dict):
        raise RequestFailed(
            f"unparseable response body: expected a JSON object, got {type(data).__name__}",
            retryable=True,
        )
    return data


def content_text(content: Any) -> str:
    """``message.content``: a string, or (some servers) a list of ``{"type": "text"}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def usage_of(u: Any) -> Usage:
    if not isinstance(u, dict):
        return Usage(requests=1)
    return Usage(
        requests=1,
        prompt_tokens=_count(u.get("prompt_tokens")),
        completion_tokens=_count(u.get("completion_tokens")),
    )


#: More tokens than any model answers in one request: a count above it is a server fault.
MAX_TOKEN_COUNT = 10**9


def _count(value: Any) -> int:
    """A token count from the server. Missing or non-numeric counts are 0 (servers that do
    not report usage); negative, infinite, NaN or absurd counts are a server fault: never a
    negative cost that defeats the cost cap, never a bare OverflowError."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return 0
    try:
        number = float(value)
    except ValueError:
        return 0
    if not math.isfinite(number) or number < 0 or number > MAX_TOKEN_COUNT:
        raise RequestFailed(
            f"the server reported an invalid token count ({value!r}) in its usage",
            retryable=True,
            hint="a server fault: check the server (its usage figures set the cost)",
        )
    return int(number)


def check_url_credentials(
    api_base: str | None, configured_key: str | None, env_key: str | None
) -> None:
    """The rule for ``user:pass@`` in ``--api-base``: the user info is sent as HTTP Basic
    auth (for a proxy in front of the server), which takes the one Authorization header, so
    no API key can go with it. A key configured for diffcap (--api-key, --api-key-file,
    DIFFCAP_API_KEY, YAML) together with user info is a config error rather than a key
    silently not sent; a key only in $OPENAI_API_KEY is not sent, with a warning."""
    url = urllib.parse.urlsplit(api_base or "")
    if url.username is None and url.password is None:
        return
    if configured_key:
        raise ConfigError(
            f"--api-base {display_url(api_base)} carries user:password, which is sent as HTTP "
            "Basic auth in place of the API key: the key would never be sent",
            hint="give one of them: the API key (DIFFCAP_API_KEY or --api-key-file) with "
            "an --api-base without user info, or the user info for a proxy that needs "
            "Basic auth, without a key",
        )
    if env_key:
        logging.getLogger("diffcap.models").warning(
            "--api-base carries user:password (sent as HTTP Basic auth); $OPENAI_API_KEY "
            "is not sent to %s",
            display_url(api_base),
        )


def is_connect_error(exc: BaseException) -> bool:
    """Whether the failure chain holds a connection error (not a timeout, not an answer)."""
    seen: BaseException | None = exc
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:  # a cause chain may loop
        if isinstance(seen, openai.APIConnectionError) and not isinstance(
            seen, openai.APITimeoutError
        ):
            return True
        visited.add(id(seen))
        seen = seen.__cause__
    return False


def describe(request: ModelRequest) -> str:
    tags = dict(request.tags)
    bits = [f"{k}={tags[k]}" for k in ("video_id", "step") if k in tags]
    return " ".join(bits) or f"request {request.cache_key()[:8]}"


def display_url(api_base: str | None) -> str:
    """The endpoint for messages, without user info (``user:key@``)."""
    if not api_base:
        return "api.openai.com"
    url = urllib.parse.urlsplit(api_base)
    host = url.hostname or ""
    netloc = f"{host}:{url.port}" if url.port else host
    return urllib.parse.urlunsplit((url.scheme, netloc, url.path, "", ""))


def is_loopback(api_base: str | None) -> bool:
    """Whether the endpoint is on this machine (``localhost``, ``127.x``, ``::1``)."""
    if not api_base:
        return False
    host = (urllib.parse.urlsplit(api_base).hostname or "").lower()
    return host == "localhost" or host.startswith("127.") or host == "::1"


def http_response_type() -> type:
    """The HTTP client's Response class (``httpx2`` for openai 3, ``httpx`` before)."""
    for cls in openai.DefaultAsyncHttpxClient.__mro__:
        root = cls.__module__.split(".")[0]
        if cls.__name__ == "AsyncClient" and root in sys.modules:
            response: type = sys.modules[root].Response
            return response
    raise ImportError("cannot find the HTTP client of the openai SDK")  # pragma: no cover


T = TypeVar("T")

if sys.version_info >= (3, 11):

    async def within(aw: Awaitable[T], seconds: float) -> T:
        """``await aw``, cancelled after ``seconds`` (TimeoutError); no extra task."""
        async with asyncio.timeout(seconds):
            return await aw

else:  # pragma: no cover - Python 3.10

    async def within(aw: Awaitable[T], seconds: float) -> T:
        return await asyncio.wait_for(aw, seconds)
