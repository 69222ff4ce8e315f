"""The outcome writes of a run store: a video done (with its record, atomically), failed,
filtered, deferred or reset, and :meth:`VideoOutcomes.commit_row` for a pipeline row.

A mixin of :class:`~diffcap.store.db.RunStore` (which provides the transactions and
``update``); split out, as the request cache is, to keep each module readable in one sitting.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import AbstractContextManager
from typing import Any

from diffcap.redact import redact, redact_data, redact_optional


class VideoOutcomes:
    """Status transitions; the class using it provides ``transaction`` and ``update``."""

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def update(self, video_id: str, **fields: Any) -> None:
        raise NotImplementedError

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
        with self.transaction() as conn:
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
        with self.transaction() as conn:
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
        with self.transaction() as conn:
            conn.execute(
                "UPDATE videos SET status = 'filtered', stage = ?, reason = ?, error = ?,"
                " duplicate_of = ?, similarity = ?, updated_at = ? WHERE video_id = ?",
                (stage, reason, error, duplicate_of, similarity, time.time(), video_id),
            )
            _clear_deaths(conn, video_id)

    def defer(self, video_id: str, stage: str, reason: str, error: str) -> None:
        """Leave the video pending, noting why this attempt stopped (a transient fault, the
        cost cap, a bug): a rerun retries it."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE videos SET status = 'pending', stage = ?, reason = ?, error = ?,"
                " attempts = attempts + 1, updated_at = ? WHERE video_id = ?",
                (stage, reason, redact(error), time.time(), video_id),
            )
            _clear_deaths(conn, video_id)

    def add_worker_death(self, video_id: str) -> int:
        """Count a worker death for the video *before* it runs alone on Ray (cleared by its
        outcome, so a death that is never answered stays counted); returns the count."""
        with self.transaction() as conn:
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
        with self.transaction() as conn:
            conn.execute(
                "UPDATE worker_deaths SET deaths = deaths - 1 WHERE video_id = ?", (video_id,)
            )
            conn.execute("DELETE FROM worker_deaths WHERE deaths <= 0")

    def clear_worker_deaths(self, video_id: str) -> None:
        with self.transaction() as conn:
            _clear_deaths(conn, video_id)

    def reset_done(self) -> int:
        """Move done videos back to pending (their stage list grew); records stay until
        replaced, keyframes and cached responses are reused."""
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE videos SET status = 'pending', updated_at = ? WHERE status = 'done'",
                (time.time(),),
            )
            return cur.rowcount

    def reset_failed(self) -> int:
        """Move failed videos back to pending (``--retry-failed``); attempts are kept."""
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE videos SET status = 'pending', updated_at = ? WHERE status = 'failed'",
                (time.time(),),
            )
            return cur.rowcount

    def commit_row(self, row: Any) -> str:
        """Write a :class:`~diffcap.engine.rows.VideoRow`'s outcome; returns the status
        stored (a deferred row stays ``pending``).

        A done row's record and status are written in one transaction; failed, filtered
        and deferred rows keep their stage, reason and error; every row updates its
        duration, short caption and damage.
        """
        vid = row.video_id
        info = {
            k: v for k, v in (("duration", row.duration), ("caption", row.caption)) if v is not None
        }
        if row.damaged is not None:
            info["damaged"] = json.dumps(row.damaged)
        if row.status == "done":
            self.complete(vid, row.record, **info)
            return "done"
        self.update(vid, **info)
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
