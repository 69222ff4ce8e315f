"""The request cache and spend of a run store: every paid model response, keyed by
``ModelRequest.cache_key(backend)``, so a rerun replays it instead of paying again.

A mixin of :class:`~diffcap.store.db.RunStore` (which provides the connection, the lock and
transactions); split out to keep each module readable in one sitting.
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


class RequestCache:
    """Request-cache methods; the class using it provides ``_query`` and ``transaction``."""

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def get_meta(self, key: str) -> Any:
        raise NotImplementedError

    def cached_response(self, cache_key: str) -> CachedResponse | None:
        rows = self._query(
            "SELECT text, model, finish_reason, prompt_tokens, completion_tokens, cost_usd"
            " FROM requests WHERE cache_key = ?",
            (cache_key,),
        )
        return CachedResponse(**rows[0]) if rows else None

    def put_response(self, cache_key: str, backend: str, response: CachedResponse) -> None:
        """Store one successful response (committed before returning)."""
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
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('replays', '1') ON CONFLICT(key)"
                " DO UPDATE SET value = CAST(value AS INTEGER) + 1"
            )

    def replays(self) -> int:
        return int(self.get_meta("replays") or 0)

    def spend(self) -> dict[str, Any]:
        """Everything paid for in this run dir (all invocations): requests, tokens, cost."""
        row = self._query(
            "SELECT COUNT(*) AS requests, COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens,"
            " COALESCE(SUM(completion_tokens), 0) AS completion_tokens,"
            " COALESCE(SUM(cost_usd), 0.0) AS cost_usd FROM requests"
        )[0]
        return dict(row)
