"""The run store: one run database seen through typed parts.

``RUN_DIR/run.sqlite`` (WAL mode, no server) is the source of truth of a run. A record is
committed in the same transaction that marks its video done, so a run killed at any moment
(SIGKILL included) never holds a done video without its record, nor a record twice.

    store = RunStore.open(RunDir("runs/demo"), engine=cfg.engine)
    store.videos.add([VideoEntry("a", "a.mp4")])      # registration, reads, counts
    store.outcomes.complete("a", record.to_json())    # done / failed / filtered / deferred
    store.records.iter()                              # records of done videos, input order
    store.meta.get("last_run")                        # run metadata
    store.cache.spend()                               # the run's request cache, chosen at open

The parts share the process's one connection to the file (:mod:`diffcap.store.sqlite`). The
request cache is chosen once, at open: with ``engine``, the run's SQLite unless
``engine.cache_url`` names PostgreSQL; with ``bound=True`` (readers such as ``status``), the
cache the run is bound to (meta ``request_cache``); with neither, the run's SQLite. The
methods of the store itself (``store.commit_row``, ``store.spend()``, ``store.get_meta`` ...)
are the parts' methods under their historical names.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diffcap.store.meta import Meta
from diffcap.store.outcomes import Outcomes, RowOutcome
from diffcap.store.postgres import PostgresRequestCache
from diffcap.store.records import Records
from diffcap.store.requests import (
    SQLITE,
    CachedResponse,
    RequestCacheStore,
)
from diffcap.store.rundir import RunDir
from diffcap.store.sqlite import Database, Row, damaged, damaged_store
from diffcap.store.sqlite_cache import SqliteRequestCache
from diffcap.store.videos import STATUSES, VideoEntry, VideoIdConflict, Videos

if TYPE_CHECKING:
    from diffcap.config import EngineConfig

#: What ``RunStore.open`` takes: a run directory, or the database file's path.
Target = RunDir | str | os.PathLike[str]


class RunStore:
    """Thread-safe access to one run database (see the module docstring).

    Each process (runner, Ray actor) has one connection per database file; every store
    opened on the file in that process shares it (and its lock)."""

    def __init__(
        self, db: Database, engine: EngineConfig | None = None, *, bound: bool = False
    ) -> None:
        self._db = db
        self.path = db.path
        self.videos = Videos(db)
        self.outcomes = Outcomes(db, self.videos)
        self.records = Records(db)
        self.meta = Meta(db)
        self.cache: RequestCacheStore = _choose_cache(db, self.meta, engine, bound)
        self._closed = False

    @classmethod
    def open(
        cls, target: Target, *, engine: EngineConfig | None = None, bound: bool = False
    ) -> RunStore:
        """Open (or create) a run database: ``target`` is a :class:`RunDir` (its ``db``) or
        the file's path. A file that is not one, is damaged, or is empty (0 bytes: truncated,
        not new) is a :class:`ConfigError` naming it, never a new run over the old one's
        files nor an internal error. ``engine``/``bound`` choose the request cache (see
        above)."""
        db = Database.open(_db_path(target))
        return _opened(cls, db, engine, bound)

    @classmethod
    def open_readonly(
        cls, target: Target, *, engine: EngineConfig | None = None, bound: bool = False
    ) -> RunStore:
        """Open for reading only (``status``, ``export``, ``view``): works on a read-only
        run directory, where SQLite cannot create its WAL index files."""
        db = Database.open_readonly(_db_path(target))
        return _opened(cls, db, engine, bound)

    @property
    def database(self) -> Database:
        """The process's shared connection to the file the parts read and write."""
        return self._db

    @property
    def rundir(self) -> RunDir:
        return RunDir(self.path.parent)

    @property
    def version(self) -> int:
        return self._db.version

    def close(self) -> None:
        """Release the connection (closed with its last user) and a PostgreSQL cache."""
        if self._closed:
            return
        self._closed = True
        if not isinstance(self.cache, SqliteRequestCache):
            self.cache.close()
        self._db.release()

    def use_request_cache(self, cache: RequestCacheStore) -> None:
        """Replace the cache chosen at open (for drivers that open the store before the run
        is bound to its cache; open with ``engine=`` instead). The store closes it."""
        if not isinstance(self.cache, SqliteRequestCache):
            self.cache.close()
        self.cache = cache

    # --- the connection (migrations, id assignment and tests use it directly) ------------

    @property
    def _conn(self) -> sqlite3.Connection:
        return self._db.conn

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._db.transaction()

    def _query(self, sql: str, params: Iterable[object] = ()) -> list[Row]:
        return self._db.query(sql, params)

    # --- the parts under their historical names -----------------------------------------

    def add_videos(self, entries: Iterable[VideoEntry], *, strict: bool = False) -> int:
        return self.videos.add(entries, strict=strict)

    def registered(self) -> list[VideoEntry]:
        return self.videos.registered()

    def video(self, video_id: str) -> Row | None:
        return self.videos.get(video_id)

    def iter_videos(self, statuses: Iterable[str], chunk: int = 1000) -> Iterator[Row]:
        return self.videos.scan(statuses, chunk)

    def count(self, statuses: Iterable[str]) -> int:
        return self.videos.count(statuses)

    def counts(self) -> dict[str, int]:
        return self.videos.counts()

    def update(self, video_id: str, **fields: object) -> None:
        self.videos.update(video_id, **fields)

    def add_bad_input(self, source: str, row: int, reason: str, error: str) -> None:
        self.videos.add_bad_input(source, row, reason, error)

    def bad_inputs(self) -> list[Row]:
        return self.videos.bad_inputs()

    def complete(
        self,
        video_id: str,
        record: dict[str, Any] | str,
        *,
        duration: float | None = None,
        caption: str | None = None,
        damaged: str | None = None,
    ) -> None:
        self.outcomes.complete(
            video_id, record, duration=duration, caption=caption, damaged=damaged
        )

    def fail(self, video_id: str, stage: str, reason: str, error: str) -> None:
        self.outcomes.fail(video_id, stage, reason, error)

    def filter(
        self,
        video_id: str,
        stage: str,
        reason: str,
        *,
        duplicate_of: str | None = None,
        similarity: float | None = None,
        error: str | None = None,
    ) -> None:
        self.outcomes.filter(
            video_id, stage, reason, duplicate_of=duplicate_of, similarity=similarity, error=error
        )

    def defer(self, video_id: str, stage: str, reason: str, error: str) -> None:
        self.outcomes.defer(video_id, stage, reason, error)

    def reset_done(self) -> int:
        return self.outcomes.reset_done()

    def reset_failed(self) -> int:
        return self.outcomes.reset_failed()

    def commit_row(self, row: RowOutcome) -> str:
        return self.outcomes.commit_row(row)

    def add_worker_death(self, video_id: str) -> int:
        return self.outcomes.add_worker_death(video_id)

    def undo_worker_death(self, video_id: str) -> None:
        self.outcomes.undo_worker_death(video_id)

    def clear_worker_deaths(self, video_id: str) -> None:
        self.outcomes.clear_worker_deaths(video_id)

    def iter_records(self, batch: int = 500) -> Iterator[dict[str, Any]]:
        return self.records.iter(batch)

    def get_meta(self, key: str) -> Any:
        return self.meta.get(key)

    def set_meta(self, key: str, value: Any) -> None:
        self.meta.set(key, value)

    def cached_response(self, cache_key: str) -> CachedResponse | None:
        return self.cache.cached_response(cache_key)

    def put_response(self, cache_key: str, backend: str, response: CachedResponse) -> None:
        self.cache.put_response(cache_key, backend, response)

    def count_replay(self) -> None:
        self.cache.count_replay()

    def replays(self) -> int:
        return self.cache.replays()

    def spend(self) -> dict[str, Any]:
        """``store.cache.spend()`` as a plain dict (what callers of this name expect)."""
        return dict(self.cache.spend())


def _db_path(target: Target) -> Path:
    return target.db if isinstance(target, RunDir) else Path(target)


def _opened(
    cls: type[RunStore], db: Database, engine: EngineConfig | None, bound: bool
) -> RunStore:
    try:
        return cls(db, engine, bound=bound)
    except BaseException:
        db.release()
        raise


def _choose_cache(
    db: Database, meta: Meta, engine: EngineConfig | None, bound: bool
) -> RequestCacheStore:
    """The run's request cache: ``engine``'s when given; with ``bound``, the one the run is
    bound to (a PostgreSQL URL stored without password: libpq reads it from
    ``PGPASSWORD`` or ``~/.pgpass``); else the run's SQLite."""
    if engine is not None:
        if engine.cache_url is None:
            return SqliteRequestCache(db)
        known = meta.get("run_id")
        run_id = str(known) if known is not None or db.readonly else meta.run_id()
        return PostgresRequestCache(engine.cache_url, run_id)
    where = meta.get("request_cache") if bound else None
    if where in (None, SQLITE):
        return SqliteRequestCache(db)
    return PostgresRequestCache(str(where), str(meta.get("run_id")))


__all__ = [
    "STATUSES",
    "CachedResponse",
    "RunStore",
    "VideoEntry",
    "VideoIdConflict",
    "damaged",
    "damaged_store",
]
