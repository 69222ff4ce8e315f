"""The videos of a run: registration, status reads and counts, and bad input rows.

A part of :class:`~diffcap.store.db.RunStore` (``store.videos``); status transitions are
``store.outcomes``.

    store.videos.add([VideoEntry("a", "a.mp4")])
    store.videos.select(["failed"])      # rows in input order (also ``store.videos(["failed"])``)
    store.videos.counts()              # {"pending": 0, "done": 1, "failed": 0, "filtered": 0}

An id is bound to its source (path/URL + span) for the life of the run: :meth:`Videos.add`
never re-binds a known id to another source (``strict=True`` raises :class:`VideoIdConflict`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from diffcap.errors import DiffcapError
from diffcap.redact import redact
from diffcap.store.sqlite import Database, Row

log = logging.getLogger(__name__)

STATUSES = ("pending", "done", "failed", "filtered")
#: Columns :meth:`Videos.update` may set (the source never: an id stays bound to it).
INFO_COLUMNS = frozenset({"duration", "caption", "damaged"})


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


class Videos:
    """Registered videos and their status columns, in one run database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def __call__(self, statuses: Iterable[str] | None = None) -> list[Row]:
        """``store.videos(statuses)``: the same as :meth:`select`."""
        return self.select(statuses)

    def add(self, entries: Iterable[VideoEntry], *, strict: bool = False) -> int:
        """Register videos as pending; ones already known keep their state. Returns new count.

        A known id offered again for the same source and span is skipped. Offered for a
        different source or span, it is never re-bound: with ``strict`` the whole batch is
        rolled back and :class:`VideoIdConflict` raised, else the entry is skipped with a
        warning (the pipeline registers with ``strict=True``).
        """
        now = time.time()
        with self._db.transaction() as conn:
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
                    _conflict(e, stored, strict)
        return added

    def registered(self) -> list[VideoEntry]:
        """Every registered video's id, source and span, in input order (no caption)."""
        return [
            VideoEntry(r["video_id"], r["source"], r["start"], r["end"])
            for r in self._db.query("SELECT video_id, source, start, end FROM videos ORDER BY seq")
        ]

    def sources(self) -> dict[str, str]:
        """``{video_id: source}`` of every registered video."""
        return {e.video_id: e.source for e in self.registered()}

    def get(self, video_id: str) -> Row | None:
        rows = self._db.query("SELECT * FROM videos WHERE video_id = ?", (video_id,))
        return rows[0] if rows else None

    def select(self, statuses: Iterable[str] | None = None) -> list[Row]:
        """Videos in input order, optionally only those with the given statuses."""
        if statuses is None:
            return self._db.query("SELECT * FROM videos ORDER BY seq")
        st = list(statuses)
        marks = ",".join("?" * len(st))
        return self._db.query(f"SELECT * FROM videos WHERE status IN ({marks}) ORDER BY seq", st)

    def scan(self, statuses: Iterable[str], chunk: int = 1000) -> Iterator[Row]:
        """Videos with the given statuses in input order, read ``chunk`` at a time (the
        run is never held whole). Safe to interleave with writes: each chunk is a fresh
        query after the last ``seq`` seen, so a video whose status changes meanwhile is
        neither repeated nor skipped-and-later-repeated."""
        st = list(statuses)
        marks = ",".join("?" * len(st))
        last = -1
        while True:
            rows = self._db.query(
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
        return int(self._db.query(sql, st)[0]["n"])

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for row in self._db.query("SELECT status, COUNT(*) AS n FROM videos GROUP BY status"):
            out[row["status"]] = row["n"]
        return out

    def update(self, video_id: str, **fields: object) -> None:
        """Set informational columns (duration, caption, damaged) without changing status.
        The source is not among them: an id stays bound to the source it was registered
        with."""
        bad = set(fields) - INFO_COLUMNS
        if bad:
            raise ValueError(f"cannot update {sorted(bad)} with update(); use the status methods")
        if not fields:
            return
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self._db.transaction() as conn:
            conn.execute(
                f"UPDATE videos SET {sets}, updated_at = ? WHERE video_id = ?",
                (*fields.values(), time.time(), video_id),
            )

    # --- bad input rows ------------------------------------------------------------------

    def add_bad_input(self, source: str, row: int, reason: str, error: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO bad_inputs (source, row, reason, error) VALUES (?,?,?,?)",
                (redact(source), row, reason, redact(error)),
            )

    def bad_inputs(self) -> list[Row]:
        return self._db.query("SELECT * FROM bad_inputs ORDER BY source, row")


def _conflict(entry: VideoEntry, stored: tuple[object, ...], strict: bool) -> None:
    def where(source: object, start: object, end: object) -> str:
        return f"{source}" if start is None and end is None else f"{source} [{start}, {end}]"

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


__all__ = ["STATUSES", "VideoEntry", "VideoIdConflict", "Videos"]
