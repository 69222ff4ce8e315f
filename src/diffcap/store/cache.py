"""Which request cache a run uses, bound once for the life of its run dir.

Every paid model answer is written the moment it arrives, keyed by
``ModelRequest.cache_key(backend)``, so a rerun (or a node that took over a lost node's
videos) replays it instead of paying again. Two stores implement
:class:`~diffcap.store.requests.RequestCacheStore`:

- the run's SQLite file (:class:`~diffcap.store.sqlite_cache.SqliteRequestCache`, the
  default): right on one machine, where every writer sees the same local disk;
- PostgreSQL (:class:`~diffcap.store.postgres.PostgresRequestCache`, ``engine.cache_url``):
  for a cluster, where workers on several nodes write at once. SQLite's locking is
  unreliable on network filesystems, so no SQLite file is ever written from several nodes:
  the driver stays the only writer of ``run.sqlite`` (videos, records) and workers write only
  the request cache, to a database server every node reaches.

A run dir is bound to one cache for its life (``run.sqlite`` meta ``request_cache``, the
location without password; ``run_id`` names the run's rows in a shared database), so a
rerun pointed at another cache is refused instead of silently paying again.

    run_id = check_request_cache(cfg.engine, run.db)           # the driver, before any video
    cache = open_request_cache(cfg.engine, run, run_id=run_id)   # a worker: SQLite or PostgreSQL
    cache.put_response(key, "openai", CachedResponse(...))       # first writer wins
    cache.cached_response(key), cache.spend(), cache.replays()
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from diffcap.errors import ConfigError
from diffcap.store.db import RunStore
from diffcap.store.postgres import PostgresRequestCache
from diffcap.store.requests import (
    SQLITE,
    RequestCacheStore,
    cache_address,
    check_entry,
    describe_cache_url,
)
from diffcap.store.rundir import DB_NAME, RunDir
from diffcap.store.sqlite import Database
from diffcap.store.sqlite_cache import SqliteRequestCache

if TYPE_CHECKING:
    from diffcap.config import EngineConfig


def ensure_run_id(store: RunStore) -> str:
    """The run's id (``run.sqlite`` meta ``run_id``), created once: it names the run's rows
    in a database several runs share."""
    return store.meta.run_id()


def bind_request_cache(
    store: RunStore,
    engine: EngineConfig,
    *,
    preflight: Callable[[str | None], None] | None = None,
) -> str | None:
    """On the driver, before any video: bind the run dir to ``engine.cache_url`` (refusing
    another cache than the one its earlier runs used); returns the run id for PostgreSQL.
    ``preflight(run_id)`` runs before a first binding is recorded, so a mistyped URL that
    cannot connect binds nothing."""
    current = describe_cache_url(engine.cache_url)
    previous = store.meta.get("request_cache")
    own = SqliteRequestCache(store.database)
    if previous is None and current != SQLITE and own.spend()["requests"]:
        previous = SQLITE  # a run from before the binding, with answers in run.sqlite
    if previous is not None and previous != current:
        flag = "no --engine-cache-url" if previous == SQLITE else f"--engine-cache-url {previous}"
        raise ConfigError(
            f"{store.path.parent}: its request cache is {previous}, not {current}",
            hint=f"rerun with {flag} (its answers are there), or use another --out",
        )
    run_id = None if engine.cache_url is None else store.meta.run_id()
    if preflight is not None:
        preflight(run_id)
    if previous is None:
        store.meta.set("request_cache", current)
    return run_id


def check_request_cache(engine: EngineConfig, db_path: str | os.PathLike[str]) -> str | None:
    """On the driver, before any video: bind the run store at ``db_path`` to its cache and,
    for PostgreSQL, connect once (a server that is down fails here, in one line naming
    host:port). Returns the run id workers need (they never open the driver's file)."""

    def connect(run_id: str | None) -> None:
        if run_id is None:
            return  # the run's own SQLite file
        cache = PostgresRequestCache(str(engine.cache_url), run_id)
        try:
            cache.check()
        finally:
            cache.close()

    store = RunStore.open(db_path)
    try:
        return bind_request_cache(store, engine, preflight=connect)
    finally:
        store.close()


def open_request_cache(
    engine: EngineConfig,
    run_dir: str | os.PathLike[str],
    *,
    run_id: str | None = None,
    db_name: str = DB_NAME,
) -> RequestCacheStore:
    """The request cache of the run in ``run_dir`` as ``engine`` configures it: its SQLite
    file (``db_name``), or PostgreSQL (lazily connected; ``run_id`` read from the run's
    file when not given, which only the driver's machine should do)."""
    path = Path(RunDir.of(run_dir).root) / db_name
    if engine.cache_url is None:
        return SqliteRequestCache(Database.open(path), owner=True)
    if run_id is None:
        store = RunStore.open(path)
        try:
            run_id = bind_request_cache(store, engine)
        finally:
            store.close()
    return PostgresRequestCache(engine.cache_url, str(run_id))


def run_request_cache(store: RunStore, engine: EngineConfig | None = None) -> RequestCacheStore:
    """The cache a run dir is bound to, for reading its spend: the store's own SQLite, or
    its PostgreSQL (the URL from ``engine`` when it names the same place, else the stored
    one, with the password from ``PGPASSWORD``/``~/.pgpass``). New code reads
    ``store.cache`` of a store opened with ``engine=``."""
    bound = store.meta.get("request_cache")
    if bound in (None, SQLITE):
        return SqliteRequestCache(store.database)  # closed with the store
    url = engine.cache_url if engine and describe_cache_url(engine.cache_url) == bound else bound
    return PostgresRequestCache(str(url), str(store.meta.get("run_id")))


__all__ = [
    "SQLITE",
    "RequestCacheStore",
    "bind_request_cache",
    "cache_address",
    "check_entry",
    "check_request_cache",
    "describe_cache_url",
    "ensure_run_id",
    "open_request_cache",
    "run_request_cache",
]
