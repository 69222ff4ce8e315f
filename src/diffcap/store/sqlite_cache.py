"""The request cache in the run's own SQLite file (the ``requests`` table): right on one
machine, where every writer sees the same local disk. The
:class:`~diffcap.store.requests.RequestCacheStore` of a run without ``engine.cache_url``.

    cache = SqliteRequestCache(Database.open(run.db), owner=True)   # standalone: closes it
    store.cache                                                     # or a run store's part
"""

from __future__ import annotations

import time

from diffcap.store.requests import CachedResponse, Spend, check_entry
from diffcap.store.sqlite import Database


class SqliteRequestCache:
    """Every paid answer of a run, keyed by ``ModelRequest.cache_key(backend)``.

    ``owner``: :meth:`close` releases the database (a cache opened on its own); a run
    store's part leaves that to the store."""

    where = "sqlite"

    def __init__(self, db: Database, *, owner: bool = False) -> None:
        self._db = db
        self._owner = owner
        self._closed = False

    @property
    def path(self) -> str:
        return str(self._db.path)

    def cached_response(self, cache_key: str) -> CachedResponse | None:
        rows = self._db.query(
            "SELECT text, model, finish_reason, prompt_tokens, completion_tokens, cost_usd"
            " FROM requests WHERE cache_key = ?",
            (cache_key,),
        )
        return CachedResponse(**rows[0]) if rows else None

    def put_response(self, cache_key: str, backend: str, response: CachedResponse) -> None:
        """Store one successful response (committed before returning); a key already
        stored keeps its first response."""
        check_entry(cache_key, backend, response)
        with self._db.transaction() as conn:
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
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('replays', '1') ON CONFLICT(key)"
                " DO UPDATE SET value = CAST(value AS INTEGER) + 1"
            )

    def replays(self) -> int:
        rows = self._db.query("SELECT value FROM meta WHERE key = 'replays'")
        return int(rows[0]["value"]) if rows else 0

    def spend(self) -> Spend:
        """Everything paid for in this run dir (all invocations): requests, tokens, cost."""
        row = self._db.query(
            "SELECT COUNT(*) AS requests, COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens,"
            " COALESCE(SUM(completion_tokens), 0) AS completion_tokens,"
            " COALESCE(SUM(cost_usd), 0.0) AS cost_usd FROM requests"
        )[0]
        return Spend(
            requests=row["requests"],
            prompt_tokens=row["prompt_tokens"],
            completion_tokens=row["completion_tokens"],
            cost_usd=row["cost_usd"],
        )

    def close(self) -> None:
        if self._owner and not self._closed:
            self._closed = True
            self._db.release()


__all__ = ["SqliteRequestCache"]
