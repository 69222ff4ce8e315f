"""Retries for remote model calls: which failures are worth another try, and how long to wait.

:func:`classify_exception` turns whatever the HTTP client raised into a
:class:`~diffcap.errors.RequestFailed` with ``retryable`` and ``retry_after`` set;
:class:`RetryPolicy` runs an attempt until it succeeds, fails for good, or runs out of tries.

    policy = RetryPolicy(max_retries=6, base_s=0.5, max_backoff_s=30)
    result = await policy.run(lambda: do_request(), what="video=a step=summary")
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import openai

from diffcap.errors import ContextExceeded, RequestFailed, exception_text
from diffcap.models.context import is_context_error, parse_context_error

log = logging.getLogger(__name__)
T = TypeVar("T")

#: A wait at least this long is announced as a warning (shorter ones are logged at INFO).
LONG_WAIT_S = 10.0
#: Status codes that may succeed on a later try (the SDK's own list, plus 425).
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_GAVE_UP_HINT = "the server kept failing; retry later or raise --max-retries"
_HINTS = {
    400: "the server rejected the request: check the model name and options "
    "(e.g. whether it accepts images)",
    401: "check the API key (OPENAI_API_KEY or --api-key)",
    403: "the key is not allowed to use this model",
    404: "check --model and --api-base (the URL usually ends in /v1)",
    413: "the request is too large: lower --image-max-side or the number of frames",
    422: "the server rejected a request field: check the options for this server",
}


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by ``max_retries`` extra attempts."""

    max_retries: int = 6
    base_s: float = 0.5
    max_backoff_s: float = 30.0
    #: Longest Retry-After we honour; a server asking for more gets this much.
    max_retry_after_s: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 0)."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_retry_after_s)
        cap = min(self.max_backoff_s, self.base_s * (2**attempt))
        # Full jitter spreads many clients that failed together (avoids retry storms).
        return random.uniform(cap / 2, cap)

    async def run(
        self,
        attempt_fn: Callable[[], Awaitable[T]],
        *,
        what: str = "request",
        gate: Callable[[], None] | None = None,
    ) -> T:
        """Run ``attempt_fn`` until it succeeds or fails for good. ``gate`` is called
        during backoff waits and may raise to give up early (a tripped circuit breaker)."""
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            try:
                return await attempt_fn()
            except RequestFailed as exc:
                if not exc.retryable:
                    raise
                if attempt + 1 >= attempts:
                    raise RequestFailed(
                        f"{what}: gave up after {attempts} attempt(s): {exc.message}",
                        retryable=True,
                        status=exc.status,
                        hint=exc.hint or _GAVE_UP_HINT,
                    ) from exc
                wait = self.delay(attempt, exc.retry_after)
                asked = ", as the server asked" if exc.retry_after is not None else ""
                log.log(
                    logging.WARNING if wait >= LONG_WAIT_S else logging.INFO,
                    "%s: %s; retry %d/%d in %.1f s%s",
                    what,
                    exc.message,
                    attempt + 1,
                    self.max_retries,
                    wait,
                    asked,
                )
                await _sleep(wait, gate)
        raise AssertionError("unreachable")  # pragma: no cover


async def _sleep(seconds: float, gate: Callable[[], None] | None) -> None:
    """Sleep, calling ``gate`` every quarter second (it raises to stop waiting)."""
    if gate is None:
        await asyncio.sleep(seconds)
        return
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        await asyncio.sleep(min(0.25, left))
        gate()


def retry_after_seconds(headers: Any) -> float | None:
    """Parse ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000.0)
        value = headers.get("retry-after")
    except (AttributeError, ValueError):
        return None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def classify_exception(exc: BaseException) -> RequestFailed:
    """Map an exception from the SDK (or asyncio) to a RequestFailed."""
    if isinstance(exc, RequestFailed):
        return exc
    if isinstance(exc, (asyncio.TimeoutError, openai.APITimeoutError)):
        return RequestFailed("the request timed out", retryable=True, hint="raise --timeout")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return RequestFailed(f"connection failed: {exception_text(cause)}", retryable=True)
    if isinstance(exc, openai.APIStatusError):
        return _from_status(exc)
    if isinstance(exc, (json.JSONDecodeError, openai.APIResponseValidationError)):
        # The SDK raises a bare JSONDecodeError when a 200 body is not JSON (a proxy error
        # page, a truncated body): usually transient.
        return RequestFailed(f"unparseable response body: {exc}", retryable=True)
    return RequestFailed(f"{type(exc).__name__}: {exc}", retryable=False)


def _from_status(exc: openai.APIStatusError) -> RequestFailed:
    status = exc.status_code
    detail = _error_detail(exc)
    if status in (400, 413, 422) and (is_context_error(detail) or _code(exc) == _OVER):
        # Over the model's context: the caller splits its work (a distinct, recoverable fault).
        limit, tokens = parse_context_error(detail)
        return ContextExceeded(
            f"HTTP {status}: over the model's context: {detail}",
            limit=limit,
            tokens=tokens,
            status=status,
        )
    retryable = status in RETRYABLE_STATUS or status >= 500
    return RequestFailed(
        f"HTTP {status}: {detail}",
        retryable=retryable,
        status=status,
        retry_after=retry_after_seconds(getattr(exc.response, "headers", None)),
        hint=None if retryable else _HINTS.get(status),
    )


_OVER = "context_length_exceeded"


def _code(exc: openai.APIStatusError) -> str | None:
    body = exc.body
    err = body.get("error", body) if isinstance(body, dict) else None
    return err.get("code") if isinstance(err, dict) else None


def _error_detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return str(err.get("message") or err.get("detail") or err)[:300]
        return str(err)[:300]
    return (str(body) if body else exc.message)[:300]
