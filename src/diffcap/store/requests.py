"""The request cache and spend of a run store: every paid model response, keyed by
``ModelRequest.cache_key(backend)``, so a rerun replays it instead of paying again.

A mixin of :class:`~diffcap.store.db.RunStore` (which provides the connection, the lock and
transactions); split out to keep each module readable in one sitting. It is the SQLite
implementation of :class:`~diffcap.store.cache.RequestCacheStore`. On the driver of a run
whose cache is elsewhere (PostgreSQL), :meth:`RequestCache.use_request_cache` makes these
methods read and write that cache instead, so every spend and replay figure of the run
comes from where the workers write.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CachedResponse:
    text: str
    model: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


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


class RequestCache:
    """Request-cache methods; the class using it provides ``_query`` and ``transaction``."""

    #: The run's cache when it is not this file (see :meth:`use_request_cache`).
    _remote: Any = None

    def use_request_cache(self, cache: Any) -> None:
        """Serve the request-cache methods from ``cache`` (a PostgreSQL cache the run is
        bound to) instead of this file's ``requests`` table; the store closes it on
        ``close()``."""
        self._remote = cache

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def get_meta(self, key: str) -> Any:
        raise NotImplementedError

    def cached_response(self, cache_key: str) -> CachedResponse | None:
        if self._remote is not None:
            return self._remote.cached_response(cache_key)
        rows = self._query(
            "SELECT text, model, finish_reason, prompt_tokens, completion_tokens, cost_usd"
            " FROM requests WHERE cache_key = ?",
            (cache_key,),
        )
        return CachedResponse(**rows[0]) if rows else None

    def put_response(self, cache_key: str, backend: str, response: CachedResponse) -> None:
        """Store one successful response (committed before returning); a key already
        stored keeps its first response."""
        if self._remote is not None:
            self._remote.put_response(cache_key, backend, response)
            return
        check_entry(cache_key, backend, response)
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO requests (cache_key, backend, model, text, finish_reason,"
                " prompt_tokens, completion_tokens, cost_usd, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    cache_key,
                    backend,
                    response.model,
                    response.text,
                    response.finish_reason,
                    response.prompt_tokens,
                    response.completion_tokens,
                    response.cost_usd,
                    time.time(),
                ),
            )

    def count_replay(self) -> None:
        """Count one response replayed from the cache (all processes share the counter)."""
        if self._remote is not None:
            self._remote.count_replay()
            return
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('replays', '1') ON CONFLICT(key)"
                " DO UPDATE SET value = CAST(value AS INTEGER) + 1"
            )

    def replays(self) -> int:
        if self._remote is not None:
            return int(self._remote.replays())
        return int(self.get_meta("replays") or 0)

    def spend(self) -> dict[str, Any]:
        """Everything paid for in this run dir (all invocations): requests, tokens, cost."""
        if self._remote is not None:
            return dict(self._remote.spend())
        row = self._query(
            "SELECT COUNT(*) AS requests, COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens,"
            " COALESCE(SUM(completion_tokens), 0) AS completion_tokens,"
            " COALESCE(SUM(cost_usd), 0.0) AS cost_usd FROM requests"
        )[0]
        return dict(row)
