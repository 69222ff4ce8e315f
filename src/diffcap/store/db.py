"""The run store: per-video status, records and the request cache in one SQLite file.

``RUN_DIR/run.sqlite`` (WAL mode, no server) is the source of truth of a run. A record is
committed in the same transaction that marks its video done, so a run killed at any moment
(SIGKILL included) never holds a done video without its record, nor a record twice.

    store = RunStore.open("runs/demo/run.sqlite")
    store.add_videos([VideoEntry("a", "a.mp4")])
    store.complete("a", record.to_json())
    store.counts()                  # {"pending": 0, "done": 1, "failed": 0, "filtered": 0}

An id is bound to its source (path/URL + span) for the life of the run: ``add_videos`` never
re-binds a known id to another source (``strict=True`` raises :class:`VideoIdConflict`).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diffcap.errors import ConfigError, DiffcapError
from diffcap.redact import redact
from diffcap.store.migrations import apply_migrations, schema_version
from diffcap.store.outcomes import VideoOutcomes
from diffcap.store.readonly import mount_writable, snapshot
from diffcap.store.requests import CachedResponse, RequestCache

log = logging.getLogger(__name__)

STATUSES = ("pending", "done", "failed", "filtered")


class VideoIdConflict(DiffcapError):
    """A video id the run already uses was offered for a different source or span."""

    reason = "id_conflict"


@dataclass(frozen=True)
class VideoEntry:
    """One input video as registered in the store."""

    video_id: str
    source: str
    start: float | None = None
    end: float | None = None
    caption: str | None = None


class RunStore(VideoOutcomes, RequestCache):
    """Thread-safe access to one run database (one connection, serialised by a lock).

    Each process (runner, Ray actor) opens its own ``RunStore``; SQLite's WAL lets one writer
    and many readers share the file.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._lock = threading.RLock()

    @classmethod
    def open_readonly(cls, path: str | Path) -> RunStore:
        """Open for reading only (``status``, ``export``, ``view``): works on a read-only
        run directory, where SQLite cannot create its WAL index files."""
        path = Path(path)
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
        return cls(conn, path)

    @classmethod
    def open(cls, path: str | Path) -> RunStore:
        """Open (or create) a run database. A file that is not one, is damaged, or is empty
        (0 bytes: truncated, not new) is a :class:`ConfigError` naming it, never a new run
        over the old one's files nor an internal error."""
        path = Path(path)
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
        return cls(conn, path)

    @property
    def version(self) -> int:
        with self._lock:
            return schema_version(self._conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            if self._remote is not None:
                self._remote.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            cur = self._conn.execute(sql, tuple(params))
            cols = [d[0] for d in cur.description or ()]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    # --- videos --------------------------------------------------------------------------

    def add_videos(self, entries: Iterable[VideoEntry], *, strict: bool = False) -> int:
        """Register videos as pending; ones already known keep their state. Returns new count.

        A known id offered again for the same source and span is skipped. Offered for a
        different source or span, it is never re-bound: with ``strict`` the whole batch is
        rolled back and :class:`VideoIdConflict` raised, else the entry is skipped with a
        warning (the pipeline registers with ``strict=True``).
        """
        now = time.time()
        with self.transaction() as conn:
            seq = conn.execute("SELECT COALESCE(MAX(seq), -1) FROM videos").fetchone()[0]
            added = 0
            for e in entries:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO videos (video_id, seq, source, start, end, caption,"
                    " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (e.video_id, seq + 1, e.source, e.start, e.end, e.caption, now),
                )
                if cur.rowcount:
                    seq += 1
                    added += 1
                    continue
                stored = conn.execute(
                    "SELECT source, start, end FROM videos WHERE video_id = ?", (e.video_id,)
                ).fetchone()
                if tuple(stored) != (e.source, e.start, e.end):
                    self._conflict(e, stored, strict)
        return added

    @staticmethod
    def _conflict(entry: VideoEntry, stored: tuple[Any, ...], strict: bool) -> None:
        def where(source: str, start: float | None, end: float | None) -> str:
            return source if start is None and end is None else f"{source} [{start}, {end}]"

        message = (
            f"video id {entry.video_id!r} already names {where(*stored)}, not "
            f"{where(entry.source, entry.start, entry.end)}"
        )
        if strict:
            raise VideoIdConflict(
                message,
                hint="give the new video another id (ids are bound to their source for the "
                "life of a run dir), or run it in a new --out directory",
            )
        log.warning("%s; kept the registered video, skipped the new one", message)

    def registered(self) -> list[VideoEntry]:
        """Every registered video's id, source and span, in input order (no caption)."""
        return [
            VideoEntry(r["video_id"], r["source"], r["start"], r["end"])
            for r in self._query("SELECT video_id, source, start, end FROM videos ORDER BY seq")
        ]

    def video(self, video_id: str) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM videos WHERE video_id = ?", (video_id,))
        return rows[0] if rows else None

    def videos(self, statuses: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Videos in input order, optionally only those with the given statuses."""
        if statuses is None:
            return self._query("SELECT * FROM videos ORDER BY seq")
        st = list(statuses)
        marks = ",".join("?" * len(st))
        return self._query(f"SELECT * FROM videos WHERE status IN ({marks}) ORDER BY seq", st)

    def iter_videos(self, statuses: Iterable[str], chunk: int = 1000) -> Iterator[dict[str, Any]]:
        """Videos with the given statuses in input order, read ``chunk`` at a time (the
        run is never held whole). Safe to interleave with writes: each chunk is a fresh
        query after the last ``seq`` seen, so a video whose status changes meanwhile is
        neither repeated nor skipped-and-later-repeated."""
        st = list(statuses)
        marks = ",".join("?" * len(st))
        last = -1
        while True:
            rows = self._query(
                f"SELECT * FROM videos WHERE status IN ({marks}) AND seq > ? ORDER BY seq LIMIT ?",
                [*st, last, chunk],
            )
            yield from rows
            if len(rows) < chunk:
                return
            last = rows[-1]["seq"]

    def count(self, statuses: Iterable[str]) -> int:
        st = list(statuses)
        marks = ",".join("?" * len(st))
        sql = f"SELECT COUNT(*) AS n FROM videos WHERE status IN ({marks})"
        return int(self._query(sql, st)[0]["n"])

    def update(self, video_id: str, **fields: Any) -> None:
        """Set informational columns (duration, caption) without changing status. The source
        is not among them: an id stays bound to the source it was registered with."""
        allowed = {"duration", "caption", "damaged"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"cannot update {sorted(bad)} with update(); use the status methods")
        if not fields:
            return
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction() as conn:
            conn.execute(
                f"UPDATE videos SET {sets}, updated_at = ? WHERE video_id = ?",
                (*fields.values(), time.time(), video_id),
            )

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for row in self._query("SELECT status, COUNT(*) AS n FROM videos GROUP BY status"):
            out[row["status"]] = row["n"]
        return out

    # --- records -------------------------------------------------------------------------

    def iter_records(self, batch: int = 500) -> Iterator[dict[str, Any]]:
        """Records of done videos in input order, read in pages (bounded memory)."""
        last = -1
        while True:
            rows = self._query(
                "SELECT v.seq AS seq, r.record AS record FROM records r"
                " JOIN videos v ON v.video_id = r.video_id"
                " WHERE v.status = 'done' AND v.seq > ? ORDER BY v.seq LIMIT ?",
                (last, batch),
            )
            if not rows:
                return
            for row in rows:
                yield json.loads(row["record"])
            last = rows[-1]["seq"]

    # --- bad input rows ------------------------------------------------------------------

    def add_bad_input(self, source: str, row: int, reason: str, error: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO bad_inputs (source, row, reason, error) VALUES (?,?,?,?)",
                (redact(source), row, reason, redact(error)),
            )

    def bad_inputs(self) -> list[dict[str, Any]]:
        return self._query("SELECT * FROM bad_inputs ORDER BY source, row")

    # --- metadata ------------------------------------------------------------------------

    def get_meta(self, key: str) -> Any:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(rows[0]["value"]) if rows else None

    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value))
            )


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


__all__ = ["STATUSES", "CachedResponse", "RunStore", "VideoEntry", "VideoIdConflict"]
