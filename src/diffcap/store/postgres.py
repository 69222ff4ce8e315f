"""The request cache in PostgreSQL: one database every node of a cluster writes to.

Why a server and not the run's SQLite file: on a cluster the workers of several nodes write
answers at once, and SQLite's locking is unreliable on the network filesystems they would
share (see docs/cluster-state.md). PostgreSQL takes concurrent writers from anywhere, each
answer is durable once ``put_response`` returns, and a node lost mid-video loses only the
calls it had in flight.

Layout (created idempotently under an advisory lock, so workers starting together do not
race): ``diffcap_requests`` holds every answer keyed by ``(run_id, cache_key)``;
``diffcap_runs`` holds per-run totals (requests, tokens, cost, replays), updated in the same
statement as the insert, so ``spend()`` is one row read however many answers the run has and
always equals the sum over its rows. Runs sharing a database are isolated by ``run_id`` (the
id in their ``run.sqlite``); identical requests of one run are stored once, first writer wins
(``INSERT ... ON CONFLICT DO NOTHING``). Answer text is ``bytea`` (UTF-8), so NUL bytes,
which PostgreSQL ``text`` cannot hold, round-trip.

    cache = PostgresRequestCache("postgresql://diffcap@db:5432/diffcap", run_id)
    cache.put_response(key, "openai", response)     # connects on first use
    cache.spend()["cost_usd"]

The object pickles as its URL and run id (workers in other processes connect lazily);
a connection refused or lost raises :class:`~diffcap.errors.CacheUnavailable` (a fault of the
world: videos stay pending) and the next call reconnects; a wrong user, password or database
name raises :class:`~diffcap.errors.ConfigError` (the run stops: waiting will not fix it).
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

from diffcap._deps import require
from diffcap.errors import CacheUnavailable, ConfigError, DiffcapError
from diffcap.redact import register_secret
from diffcap.store.requests import (
    CachedResponse,
    Spend,
    cache_address,
    check_entry,
    describe_cache_url,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Key of the advisory lock that serialises schema creation across processes.
SCHEMA_LOCK = 0x64_69_66_66_63_61_70  # "diffcap"
#: Seconds one connection attempt may take before the cache counts as unreachable.
CONNECT_TIMEOUT_S = 10

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS diffcap_requests (
        run_id text NOT NULL,
        cache_key text NOT NULL,
        backend text NOT NULL,
        model text NOT NULL,
        text bytea NOT NULL,
        finish_reason text,
        prompt_tokens bigint NOT NULL,
        completion_tokens bigint NOT NULL,
        cost_usd double precision NOT NULL,
        created_at double precision NOT NULL,
        PRIMARY KEY (run_id, cache_key))""",
    """CREATE TABLE IF NOT EXISTS diffcap_runs (
        run_id text PRIMARY KEY,
        requests bigint NOT NULL DEFAULT 0,
        prompt_tokens bigint NOT NULL DEFAULT 0,
        completion_tokens bigint NOT NULL DEFAULT 0,
        cost_usd double precision NOT NULL DEFAULT 0,
        replays bigint NOT NULL DEFAULT 0,
        created_at double precision NOT NULL)""",
)

_EXISTS = (
    "SELECT to_regclass('diffcap_requests') IS NOT NULL AND to_regclass('diffcap_runs') IS NOT NULL"
)

#: Connection failures that are settings, not faults of the world (libpq's own messages).
_REFUSED = (
    "password authentication failed",
    "no password supplied",
    "does not exist",  # the role or the database
    "no pg_hba.conf entry",
    "permission denied for database",
)

# The insert and the run's totals in one statement: both happen or neither does, and a
# duplicate key (another worker answered first) changes nothing.
_PUT = """
WITH ins AS (
    INSERT INTO diffcap_requests (run_id, cache_key, backend, model, text, finish_reason,
        prompt_tokens, completion_tokens, cost_usd, created_at)
    VALUES (%(run)s, %(key)s, %(backend)s, %(model)s, %(text)s, %(finish)s, %(pt)s, %(ct)s,
        %(cost)s, %(now)s)
    ON CONFLICT (run_id, cache_key) DO NOTHING
    RETURNING prompt_tokens, completion_tokens, cost_usd)
UPDATE diffcap_runs r SET requests = r.requests + 1,
    prompt_tokens = r.prompt_tokens + ins.prompt_tokens,
    completion_tokens = r.completion_tokens + ins.completion_tokens,
    cost_usd = r.cost_usd + ins.cost_usd
FROM ins WHERE r.run_id = %(run)s
"""


class PostgresRequestCache:
    """:class:`~diffcap.store.cache.RequestCacheStore` in a PostgreSQL database; one
    connection per process (autocommit), serialised by a lock."""

    def __init__(self, url: str, run_id: str) -> None:
        self.url = url
        self.run_id = run_id
        self._conn: Any = None
        self._lock = threading.RLock()
        _register_password(url)

    @property
    def where(self) -> str:
        """The cache's location without password, for messages."""
        return describe_cache_url(self.url)

    def __getstate__(self) -> dict[str, str]:
        return {"url": self.url, "run_id": self.run_id}

    def __setstate__(self, state: dict[str, str]) -> None:
        self.url, self.run_id = state["url"], state["run_id"]
        self._conn, self._lock = None, threading.RLock()

    def __repr__(self) -> str:
        return f"PostgresRequestCache({self.where!r}, run_id={self.run_id!r})"

    # --- connection ----------------------------------------------------------------------

    def check(self) -> None:
        """Connect (creating the tables if needed) or raise ``CacheUnavailable`` now."""
        self._run(lambda cur: None)

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    conn.close()
                except Exception:  # a broken connection: nothing left to release
                    log.debug("closing %s failed", self.where, exc_info=True)

    def _connect(self) -> Any:
        psycopg = require("psycopg", extra="postgres", purpose="a PostgreSQL request cache")
        conn = psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name="diffcap",
            # A dead peer (node or network gone) is noticed in about a minute, not hours.
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=3,
        )
        try:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                # DDL only when a table is missing: a user with no CREATE right can use
                # tables an administrator made.
                if not cur.execute(_EXISTS).fetchone()[0]:
                    for ddl in SCHEMA:
                        cur.execute(ddl)
                cur.execute(
                    "INSERT INTO diffcap_runs (run_id, created_at) VALUES (%s, %s)"
                    " ON CONFLICT (run_id) DO NOTHING",
                    (self.run_id, time.time()),
                )
        except BaseException:
            conn.close()
            raise
        log.debug("request cache: connected to %s (run %s)", self.where, self.run_id)
        return conn

    def _run(self, work: Callable[[Any], T]) -> T:
        """``work(cursor)`` on this process's connection. A connection found dead (the
        server restarted since the last call) is replaced and ``work`` tried once more
        (every statement here is idempotent or a counter); still failing, it is dropped and
        ``CacheUnavailable`` raised, so the next call reconnects."""
        psycopg = require("psycopg", extra="postgres", purpose="a PostgreSQL request cache")
        lost = (psycopg.OperationalError, psycopg.InterfaceError)
        with self._lock:
            for attempt in (1, 2):
                fresh = self._conn is None or self._conn.closed
                try:
                    if fresh:
                        self._conn = self._connect()
                    with self._conn.cursor() as cur:
                        return work(cur)
                except lost as exc:
                    self.close()
                    if fresh or attempt == 2:
                        raise self._unavailable(exc) from None
                    log.info("request cache: connection to %s lost; reconnecting", self.where)
            raise AssertionError("unreachable")  # the loop returns or raises

    def _unavailable(self, exc: BaseException) -> DiffcapError:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if any(m in first for m in _REFUSED):  # waiting will not fix these: a setting will
            return ConfigError(
                f"request cache at {cache_address(self.url)} ({self.where}) refused the "
                f"connection: {first}",
                hint="check the user, the database name and the password (in the URL, "
                "PGPASSWORD or ~/.pgpass) of --engine-cache-url",
            )
        return CacheUnavailable(
            f"request cache at {cache_address(self.url)} ({self.where}) is unreachable: {first}",
            hint="start or fix the PostgreSQL server, then rerun; finished answers are kept "
            "there and nothing was marked failed",
        )

    # --- the cache -----------------------------------------------------------------------

    def cached_response(self, cache_key: str) -> CachedResponse | None:
        row = self._run(
            lambda cur: cur.execute(
                "SELECT text, model, finish_reason, prompt_tokens, completion_tokens, cost_usd"
                " FROM diffcap_requests WHERE run_id = %s AND cache_key = %s",
                (self.run_id, cache_key),
            ).fetchone()
        )
        if row is None:
            return None
        text, model, finish, pt, ct, cost = row
        return CachedResponse(bytes(text).decode("utf-8"), model, finish, pt, ct, cost)

    def put_response(self, cache_key: str, backend: str, response: CachedResponse) -> None:
        check_entry(cache_key, backend, response)
        params = {
            "run": self.run_id,
            "key": cache_key,
            "backend": backend,
            "model": response.model,
            "text": response.text.encode("utf-8"),
            "finish": response.finish_reason,
            "pt": response.prompt_tokens,
            "ct": response.completion_tokens,
            "cost": response.cost_usd,
            "now": time.time(),
        }
        self._run(lambda cur: cur.execute(_PUT, params))

    def count_replay(self) -> None:
        self._run(
            lambda cur: cur.execute(
                "UPDATE diffcap_runs SET replays = replays + 1 WHERE run_id = %s", (self.run_id,)
            )
        )

    def replays(self) -> int:
        return int(self._totals()["replays"])

    def spend(self) -> Spend:
        t = self._totals()
        return Spend(
            requests=int(t["requests"]),
            prompt_tokens=int(t["prompt_tokens"]),
            completion_tokens=int(t["completion_tokens"]),
            cost_usd=float(t["cost_usd"]),
        )

    def _totals(self) -> dict[str, int | float]:
        row = self._run(
            lambda cur: cur.execute(
                "SELECT requests, prompt_tokens, completion_tokens, cost_usd, replays"
                " FROM diffcap_runs WHERE run_id = %s",
                (self.run_id,),
            ).fetchone()
        )
        names = ("requests", "prompt_tokens", "completion_tokens", "cost_usd", "replays")
        values = row or (0, 0, 0, 0.0, 0)
        pairs = zip(names, values, strict=True)
        return {n: (float(v) if n == "cost_usd" else int(v)) for n, v in pairs}


def _register_password(url: str) -> None:
    """A password in the URL is redacted from every later log line and error text."""
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        register_secret(urllib.parse.unquote(parts.password))
    for key, value in urllib.parse.parse_qsl(parts.query):
        if key.lower() == "password":
            register_secret(value)


__all__ = ["PostgresRequestCache"]
