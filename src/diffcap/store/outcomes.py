"""The outcome writes of a run store: a video done (with its record, atomically), failed,
filtered, deferred or reset, and :meth:`Outcomes.commit_row` for a pipeline row.

A part of :class:`~diffcap.store.db.RunStore` (``store.outcomes``).

    store.outcomes.complete("a", record.to_json())   # record and status in one transaction
    store.outcomes.commit_row(row)                   # whatever the row's status says
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any, Protocol

from diffcap.redact import redact, redact_data, redact_optional
from diffcap.store.sqlite import Database
from diffcap.store.videos import Videos


class RowOutcome(Protocol):
    """What :meth:`Outcomes.commit_row` reads of a row (an engine ``VideoRow``)."""

    @property
    def video_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def stage(self) -> str | None: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def duration(self) -> float | None: ...
    @property
    def caption(self) -> str | None: ...
    @property
    def duplicate_of(self) -> str | None: ...
    @property
    def similarity(self) -> float | None: ...
    @property
    def damaged(self) -> dict[str, Any] | None: ...
    @property
    def record(self) -> dict[str, Any] | None: ...


class Outcomes:
    """Status transitions of the videos of one run database."""

    def __init__(self, db: Database, videos: Videos) -> None:
        self._db = db
        self._videos = videos

    def complete(
        self,
        video_id: str,
        record: dict[str, Any] | str,
        *,
        duration: float | None = None,
        caption: str | None = None,
        damaged: str | None = None,
    ) -> None:
        """Store the record (dict or JSON text) and mark the video done, atomically (one
        transaction); ``duration``/``caption`` update those columns in the same write."""
        # Captions were redacted as the answers arrived (CachedBackend); the provenance, which
        # names endpoints and settings, is redacted here, where records enter the store.
        if isinstance(record, dict) and record.get("provenance"):
            record = {**record, "provenance": redact_data(record["provenance"])}
        blob = redact(record) if isinstance(record, str) else json.dumps(record, ensure_ascii=False)
        now = time.time()
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO records (video_id, record, created_at) VALUES (?, ?, ?)",
                (video_id, blob, now),
            )
            conn.execute(
                "UPDATE videos SET status = 'done', stage = NULL, reason = NULL, error = NULL,"
                " attempts = attempts + 1, duration = COALESCE(?, duration),"
                " caption = COALESCE(?, caption), damaged = ?, updated_at = ? WHERE video_id = ?",
                (duration, caption, damaged, now, video_id),
            )
            _clear_deaths(conn, video_id)

    def fail(self, video_id: str, stage: str, reason: str, error: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE videos SET status = 'failed', stage = ?, reason = ?, error = ?,"
                " attempts = attempts + 1, updated_at = ? WHERE video_id = ?",
                (stage, reason, redact(error), time.time(), video_id),
            )
            _clear_deaths(conn, video_id)

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
        error = redact_optional(error)
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE videos SET status = 'filtered', stage = ?, reason = ?, error = ?,"
                " duplicate_of = ?, similarity = ?, updated_at = ? WHERE video_id = ?",
                (stage, reason, error, duplicate_of, similarity, time.time(), video_id),
            )
            _clear_deaths(conn, video_id)

    def defer(self, video_id: str, stage: str, reason: str, error: str) -> None:
        """Leave the video pending, noting why this attempt stopped (a transient fault, the
        cost cap, a bug): a rerun retries it."""
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE videos SET status = 'pending', stage = ?, reason = ?, error = ?,"
                " attempts = attempts + 1, updated_at = ? WHERE video_id = ?",
                (stage, reason, redact(error), time.time(), video_id),
            )
            _clear_deaths(conn, video_id)

    def add_worker_death(self, video_id: str) -> int:
        """Count a worker death for the video *before* it runs alone on Ray (cleared by its
        outcome, so a death that is never answered stays counted); returns the count."""
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO worker_deaths (video_id, deaths) VALUES (?, 1)"
                " ON CONFLICT(video_id) DO UPDATE SET deaths = deaths + 1",
                (video_id,),
            )
            row = conn.execute(
                "SELECT deaths FROM worker_deaths WHERE video_id = ?", (video_id,)
            ).fetchone()
        return int(row[0])

    def undo_worker_death(self, video_id: str) -> None:
        """Take back the last count (the video was not lost to a dying worker)."""
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE worker_deaths SET deaths = deaths - 1 WHERE video_id = ?", (video_id,)
            )
            conn.execute("DELETE FROM worker_deaths WHERE deaths <= 0")

    def clear_worker_deaths(self, video_id: str) -> None:
        with self._db.transaction() as conn:
            _clear_deaths(conn, video_id)

    def reset_done(self) -> int:
        """Move done videos back to pending (their stage list grew); records stay until
        replaced, keyframes and cached responses are reused."""
        return self._reset("done")

    def reset_failed(self) -> int:
        """Move failed videos back to pending (``--retry-failed``); attempts are kept."""
        return self._reset("failed")

    def _reset(self, status: str) -> int:
        with self._db.transaction() as conn:
            cur = conn.execute(
                "UPDATE videos SET status = 'pending', updated_at = ? WHERE status = ?",
                (time.time(), status),
            )
            return cur.rowcount

    def commit_row(self, row: RowOutcome) -> str:
        """Write a :class:`~diffcap.engine.rows.VideoRow`'s outcome; returns the status
        stored (a deferred row stays ``pending``).

        A done row's record and status are written in one transaction; failed, filtered
        and deferred rows keep their stage, reason and error; every row updates its
        duration, short caption and damage.
        """
        vid = row.video_id
        damaged = json.dumps(row.damaged) if row.damaged is not None else None
        if row.status == "done":
            record = row.record if row.record is not None else "null"  # as json.dumps(None)
            self.complete(vid, record, duration=row.duration, caption=row.caption, damaged=damaged)
            return "done"
        info = {"duration": row.duration, "caption": row.caption, "damaged": damaged}
        self._videos.update(vid, **{k: v for k, v in info.items() if v is not None})
        if row.status == "failed":
            self.fail(vid, row.stage or "", row.reason or "error", row.error or "")
            return "failed"
        if row.status == "filtered":
            self.filter(
                vid,
                row.stage or "",
                row.reason or "filtered",
                duplicate_of=row.duplicate_of,
                similarity=row.similarity,
                error=row.error,
            )
            return "filtered"
        if row.status == "deferred":
            self.defer(vid, row.stage or "", row.reason or "deferred", row.error or "")
        return "pending"


def _clear_deaths(conn: sqlite3.Connection, video_id: str) -> None:
    conn.execute("DELETE FROM worker_deaths WHERE video_id = ?", (video_id,))


__all__ = ["Outcomes", "RowOutcome"]
