"""One SQLite connection per process per database file, shared by every store opened on it.

A run's driver opens its run store, then its model stages check and open the request cache
on the same file: they all get the same :class:`Database` (one connection, one lock), so one
process never holds several connections on one file (with several, SQLite serialises writers
through file locks and a writer can wait on a reader of its own process). A forked or spawned
worker process opens its own.

    db = Database.open(run.db)          # the shared one, or a new one
    with db.transaction() as conn: conn.execute(...)
    db.query("SELECT * FROM videos")    # [{"video_id": ..., ...}]
    db.release()                        # closed when its last user releases it
"""

from __future__ import annotations

import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from diffcap.errors import ConfigError
from diffcap.store.migrations import apply_migrations, schema_version
from diffcap.store.readonly import mount_writable, snapshot

#: One SQL row as column name -> value (SQLite values: None, int, float, str, bytes).
Row = dict[str, Any]

_OPEN: dict[tuple[int, Path, bool], Database] = {}
_OPEN_LOCK = threading.Lock()


class Database:
    """A connection to one SQLite file, its lock and how many stores use it."""

    def __init__(self, conn: sqlite3.Connection, path: Path, *, readonly: bool) -> None:
        self.conn = conn
        self.path = path
        self.readonly = readonly
        self.lock = threading.RLock()
        self.users = 0

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Database:
        """The process's writable connection to ``path`` (created, migrated) with one more
        user. A file that is not a run database, is damaged, or is empty is a
        :class:`ConfigError` naming it."""
        return _shared(Path(path), readonly=False)

    @classmethod
    def open_readonly(cls, path: str | os.PathLike[str]) -> Database:
        """A connection for reading only; the process's writable one when it has one.
        Works on a read-only run directory, where SQLite cannot create its WAL index."""
        return _shared(Path(path), readonly=True)

    @property
    def version(self) -> int:
        with self.lock:
            return schema_version(self.conn)

    @property
    def closed(self) -> bool:
        return self.users <= 0

    def release(self) -> None:
        """One user fewer; the last one closes the connection."""
        with _OPEN_LOCK:
            self.users -= 1
            if self.users > 0:
                return
            for key, db in list(_OPEN.items()):
                if db is self:
                    del _OPEN[key]
        with self.lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception), under the lock."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def query(self, sql: str, params: Iterable[object] = ()) -> list[Row]:
        with self.lock:
            cur = self.conn.execute(sql, tuple(params))
            cols = [d[0] for d in cur.description or ()]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


def _shared(path: Path, *, readonly: bool) -> Database:
    pid = os.getpid()
    key = (pid, path.resolve(), readonly)
    with _OPEN_LOCK:
        db = _OPEN.get((pid, key[1], False)) or _OPEN.get(key)
        if db is None:
            db = _connect_readonly(path) if readonly else _connect(path)
            _OPEN[key] = db
        db.users += 1
        return db


def _connect(path: Path) -> Database:
    path.parent.mkdir(parents=True, exist_ok=True)
    _refuse_empty(path)
    # isolation_level=None: we issue BEGIN/COMMIT ourselves (explicit transactions).
    conn = sqlite3.connect(path, isolation_level=None, timeout=60, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable against process death (SIGKILL); only an OS crash can lose
        # the last commits, and a lost cache entry only costs one repeated request.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        apply_migrations(conn)
        conn.execute("SELECT COUNT(*) FROM videos").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        if isinstance(exc, sqlite3.OperationalError) and not damaged(exc):
            raise  # disk full, read-only, locked: the caller's storage errors
        raise damaged_store(path, exc) from None
    return Database(conn, path, readonly=False)


def _connect_readonly(path: Path) -> Database:
    writable = os.access(path.parent, os.W_OK) and mount_writable(path.parent)
    target, mode = path, "mode=ro" if writable else "immutable=1"
    wal = path.with_name(path.name + "-wal")
    if not writable and wal.is_file() and wal.stat().st_size > 0:
        # A run killed before its last checkpoint left commits in the WAL, which an
        # immutable open would not see: read a private copy of the database and its WAL.
        target, mode = snapshot(path), "mode=ro"
    uri = f"file:{urllib.parse.quote(str(target.resolve()))}?{mode}"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("SELECT COUNT(*) FROM videos").fetchone()
    except sqlite3.DatabaseError as exc:  # not SQLite, or not a run database
        conn.close()
        raise ConfigError(
            f"{path}: not a diffcap run database ({exc})",
            hint="pass the --out folder of a diffcap run",
        ) from None
    return Database(conn, path, readonly=True)


def damaged(exc: BaseException) -> bool:
    """Whether an SQLite error says the database file itself is bad (not the disk)."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    if not isinstance(exc, sqlite3.OperationalError):
        return True  # SQLITE_CORRUPT, SQLITE_NOTADB
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text or "corrupt" in text


def damaged_store(path: Path, exc: BaseException) -> ConfigError:
    return ConfigError(
        f"{path}: not a usable diffcap run database ({exc})",
        hint="restore it from a backup, or move it away to start a new run in this folder "
        "(model calls it had cached would be paid again)",
    )


def _refuse_empty(path: Path) -> None:
    """A 0-byte run database is a truncated one (SQLite writes its header when it creates
    the file): refuse rather than silently start over and pay for every request again."""
    try:
        empty = path.stat().st_size == 0
    except FileNotFoundError:
        return
    wal = path.with_name(path.name + "-wal")
    if empty and not (wal.is_file() and wal.stat().st_size > 0):
        raise ConfigError(
            f"{path}: the run database is empty (0 bytes): it was truncated or replaced",
            hint="restore it from a backup, or delete it to start this run over (every "
            "model call is then paid again)",
        )


__all__ = ["Database", "Row", "damaged", "damaged_store"]
