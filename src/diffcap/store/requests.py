"""The request cache's contract: what every store of paid model answers offers, the value
it holds, and how a cache's location is named (no implementation here).

Two stores implement :class:`RequestCacheStore`: the run's SQLite file
(:class:`~diffcap.store.sqlite_cache.SqliteRequestCache`) and PostgreSQL
(:class:`~diffcap.store.postgres.PostgresRequestCache`); see :mod:`diffcap.store.cache` for
which one a run uses.

    cache.put_response(key, "openai", CachedResponse(...))   # first writer wins
    cache.cached_response(key), cache.spend(), cache.replays()
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Protocol, TypedDict, runtime_checkable

from diffcap.redact import url_without_password

#: ``run.sqlite`` meta value of a run whose cache is its own SQLite file.
SQLITE = "sqlite"


@dataclass(frozen=True)
class CachedResponse:
    text: str
    model: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class Spend(TypedDict):
    """What a run paid for so far (every invocation)."""

    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


@runtime_checkable
class RequestCacheStore(Protocol):
    """What the request cache offers, whichever store holds it."""

    def cached_response(self, cache_key: str) -> CachedResponse | None:
        """The stored answer of ``cache_key``, or None."""

    def put_response(self, cache_key: str, backend: str, response: CachedResponse) -> None:
        """Store one answer, durably before returning; a key already stored keeps its first
        answer (never an error)."""

    def count_replay(self) -> None:
        """Count one answer replayed from the cache (shared by every process of the run)."""

    def replays(self) -> int:
        """Answers replayed so far, over every invocation of the run."""

    def spend(self) -> Spend:
        """``{"requests", "prompt_tokens", "completion_tokens", "cost_usd"}`` paid so far."""

    def close(self) -> None:
        """Release connections (idempotent)."""


def check_entry(cache_key: str, backend: str, response: CachedResponse) -> None:
    """Refuse what no store can hold the same way: NUL bytes outside the answer text (the
    text itself round-trips in every store, NUL bytes included)."""
    for field, value in (
        ("cache key", cache_key),
        ("backend", backend),
        ("model", response.model),
        ("finish_reason", response.finish_reason or ""),
    ):
        if "\x00" in value:
            raise ValueError(f"request cache: the {field} {value!r} holds a NUL byte")


def describe_cache_url(url: str | None) -> str:
    """Where a cache lives, safe to log and store: the URL without its password
    (``postgresql://u:pw@h:5432/db?password=x`` -> ``postgresql://u@h:5432/db``)."""
    return url_without_password(url) if url else SQLITE


def cache_address(url: str) -> str:
    """``host:port`` of a cache URL, for one-line errors."""
    parts = urllib.parse.urlsplit(url)
    hosts = parts.netloc.rsplit("@", 1)[-1] or "localhost"
    return hosts if ":" in hosts else f"{hosts}:5432"


__all__ = [
    "SQLITE",
    "CachedResponse",
    "RequestCacheStore",
    "Spend",
    "cache_address",
    "check_entry",
    "describe_cache_url",
]
