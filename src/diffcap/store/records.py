"""The records of a run's done videos (a part of :class:`~diffcap.store.db.RunStore`,
``store.records``); they are written by ``store.outcomes.complete``.

    for rec in store.records.iter():     # dicts, input order, read in pages
        ...
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from diffcap.store.sqlite import Database


class Records:
    """Reading the stored records of one run database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def iter(self, batch: int = 500) -> Iterator[dict[str, Any]]:
        """Records of done videos in input order, read in pages (bounded memory)."""
        last = -1
        while True:
            rows = self._db.query(
                "SELECT v.seq AS seq, r.record AS record FROM records r"
                " JOIN videos v ON v.video_id = r.video_id"
                " WHERE v.status = 'done' AND v.seq > ? ORDER BY v.seq LIMIT ?",
                (last, batch),
            )
            if not rows:
                return
            for row in rows:
                record: dict[str, Any] = json.loads(row["record"])
                yield record
            last = rows[-1]["seq"]

    def get(self, video_id: str) -> dict[str, Any] | None:
        """The stored record of ``video_id`` (whatever its status now), or None."""
        rows = self._db.query("SELECT record FROM records WHERE video_id = ?", (video_id,))
        if not rows:
            return None
        record: dict[str, Any] = json.loads(rows[0]["record"])
        return record


__all__ = ["Records"]
