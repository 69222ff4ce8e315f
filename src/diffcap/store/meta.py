"""Run metadata: JSON values by key in the run database (a part of
:class:`~diffcap.store.db.RunStore`, ``store.meta``).

    store.meta.set("last_run", {...}); store.meta.get("last_run")
    store.meta.run_id()          # created once; names the run's rows in a shared cache
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from diffcap.store.sqlite import Database


class Meta:
    """``meta`` table access of one run database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, key: str) -> Any:
        """The JSON value stored under ``key``, or None."""
        rows = self._db.query("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(rows[0]["value"]) if rows else None

    def set(self, key: str, value: Any) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value))
            )

    def run_id(self) -> str:
        """The run's id (meta ``run_id``), created once: it names the run's rows in a
        database several runs share."""
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('run_id', ?)",
                (f'"{uuid.uuid4().hex}"',),
            )
        return str(self.get("run_id"))


__all__ = ["Meta"]
