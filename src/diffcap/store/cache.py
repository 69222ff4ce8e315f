"""The request cache behind one interface, wherever it lives.

Every paid model answer is written the moment it arrives, keyed by
``ModelRequest.cache_key(backend)``, so a rerun (or a node that took over a lost node's
videos) replays it instead of paying again. Two stores implement :class:`RequestCacheStore`:

- the run's SQLite file (:class:`~diffcap.store.db.RunStore`, the default): right on one
  machine, where every writer sees the same local disk;
- PostgreSQL (:class:`~diffcap.store.postgres.PostgresRequestCache`, ``engine.cache_url``):
  for a cluster, where workers on several nodes write at once. SQLite's locking is
  unreliable on network filesystems, so no SQLite file is ever written from several nodes:
  the driver stays the only writer of ``run.sqlite`` (videos, records) and workers write only
  the request cache, to a database server every node reaches.

A run dir is bound to one cache for its life (``run.sqlite`` meta ``request_cache``, the
location without password; ``run_id`` names the run's rows in a shared database), so a
rerun pointed at another cache is refused instead of silently paying again.

    cache = open_request_cache(cfg.engine, run_dir)          # the run's SQLite, or PostgreSQL
    cache.put_response(key, "openai", CachedResponse(...))   # first writer wins
    cache.cached_response(key), cache.spend(), cache.replays()
"""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from diffcap.errors import ConfigError
from diffcap.redact import url_without_password
from diffcap.store.requests import CachedResponse, check_entry

if TYPE_CHECKING:
    from diffcap.config import EngineConfig
    from diffcap.store.db import RunStore

#: ``run.sqlite`` meta value of a run whose cache is its own SQLite file.
SQLITE = "sqlite"


@runtime_checkable
class RequestCacheStore(Protocol):
    """What the request cache offers, whichever store holds it (see the module docstring)."""

    def cached_response(self, cache_key: str) -> CachedResponse | None:
        """The stored answer of ``cache_key``, or None."""

    def put_response(self, cache_key: str, backend: str, response: CachedResponse) -> None:
        """Store one answer, durably before returning; a key already stored keeps its first
        answer (never an error)."""

    def count_replay(self) -> None:
        """Count one answer replayed from the cache (shared by every process of the run)."""

    def replays(self) -> int:
        """Answers replayed so far, over every invocation of the run."""

    def spend(self) -> dict[str, Any]:
        """``{"requests", "prompt_tokens", "completion_tokens", "cost_usd"}`` paid so far."""

    def close(self) -> None:
        """Release connections (idempotent)."""


def describe_cache_url(url: str | None) -> str:
    """Where a cache lives, safe to log and store: the URL without its password
    (``postgresql://u:pw@h:5432/db?password=x`` -> ``postgresql://u@h:5432/db``)."""
    return url_without_password(url) if url else SQLITE


def cache_address(url: str) -> str:
    """``host:port`` of a cache URL, for one-line errors."""
    parts = urllib.parse.urlsplit(url)
    hosts = parts.netloc.rsplit("@", 1)[-1] or "localhost"
    return hosts if ":" in hosts else f"{hosts}:5432"


def ensure_run_id(store: RunStore) -> str:
    """The run's id (``run.sqlite`` meta ``run_id``), created once: it names the run's rows
    in a database several runs share."""
    with store.transaction() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('run_id', ?)",
            (f'"{uuid.uuid4().hex}"',),
        )
    run_id: str = store.get_meta("run_id")
    return run_id


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
    previous = store.get_meta("request_cache")
    if previous is None and current != SQLITE and store.spend()["requests"]:
        previous = SQLITE  # a run from before the binding, with answers in run.sqlite
    if previous is not None and previous != current:
        flag = "no --engine-cache-url" if previous == SQLITE else f"--engine-cache-url {previous}"
        raise ConfigError(
            f"{store.path.parent}: its request cache is {previous}, not {current}",
            hint=f"rerun with {flag} (its answers are there), or use another --out",
        )
    run_id = None if engine.cache_url is None else ensure_run_id(store)
    if preflight is not None:
        preflight(run_id)
    if previous is None:
        store.set_meta("request_cache", current)
    return run_id


def check_request_cache(engine: EngineConfig, db_path: str | Path) -> str | None:
    """On the driver, before any video: bind the run store at ``db_path`` to its cache and,
    for PostgreSQL, connect once (a server that is down fails here, in one line naming
    host:port). Returns the run id workers need (they never open the driver's file)."""
    from diffcap.store.db import RunStore

    def connect(run_id: str | None) -> None:
        if run_id is None:
            return  # the run's own SQLite file
        from diffcap.store.postgres import PostgresRequestCache

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
    run_dir: str | Path,
    *,
    run_id: str | None = None,
    db_name: str = "run.sqlite",
) -> RequestCacheStore:
    """The request cache of the run in ``run_dir`` as ``engine`` configures it: its SQLite
    file (``db_name``), or PostgreSQL (lazily connected; ``run_id`` read from the run's
    file when not given, which only the driver's machine should do)."""
    from diffcap.store.db import RunStore

    if engine.cache_url is None:
        return RunStore.open(Path(run_dir) / db_name)
    from diffcap.store.postgres import PostgresRequestCache

    if run_id is None:
        store = RunStore.open(Path(run_dir) / db_name)
        try:
            run_id = bind_request_cache(store, engine)
        finally:
            store.close()
    return PostgresRequestCache(engine.cache_url, str(run_id))


def run_request_cache(store: RunStore, engine: EngineConfig | None = None) -> RequestCacheStore:
    """The cache a run dir is bound to, for reading its spend (``status``, the driver):
    ``store`` itself, or its PostgreSQL (the URL from ``engine`` when it names the same
    place, else the stored one, with the password from ``PGPASSWORD``/``~/.pgpass``)."""
    bound = store.get_meta("request_cache")
    if bound in (None, SQLITE):
        return store
    from diffcap.store.postgres import PostgresRequestCache

    url = engine.cache_url if engine and describe_cache_url(engine.cache_url) == bound else bound
    return PostgresRequestCache(str(url), str(store.get_meta("run_id")))


def adopt_run_cache(store: RunStore, engine: EngineConfig) -> None:
    """Make ``store.spend()`` / ``replays()`` read the run's bound cache. The run's spend
    lives where its workers write answers (PostgreSQL on a cluster); the driver calls this
    once the run is bound (after the stages' checks) and before it reads any spend, for the
    cost cap and for the run's report."""
    if engine.cache_url is None:
        return
    cache = run_request_cache(store, engine)
    if cache is not store:
        store.use_request_cache(cache)


__all__ = [
    "SQLITE",
    "RequestCacheStore",
    "adopt_run_cache",
    "bind_request_cache",
    "cache_address",
    "check_entry",
    "check_request_cache",
    "describe_cache_url",
    "ensure_run_id",
    "open_request_cache",
    "run_request_cache",
]
