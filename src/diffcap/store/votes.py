"""The preference-vote store (SQLite, stdlib ``sqlite3``).

One row per (reviewer, video, pair of systems); the pair is stored in sorted order
(``system_a < system_b``) with which of the two was shown on the left and the choice.

    store = VoteStore("votes.sqlite")
    store.record("ann", "vid1", "runA", "runB", left="runB", choice="left")  # runB won
    store.voted("ann")        # {("vid1", "runA", "runB")}
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from diffcap.errors import ConfigError

DEFAULT_DB = "votes.sqlite"
CHOICES = ("left", "right", "tie")

# Ordered migrations; PRAGMA user_version records how many have run.
_MIGRATIONS = [
    """
    CREATE TABLE votes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        reviewer TEXT NOT NULL,
        created TEXT NOT NULL,
        video_id TEXT NOT NULL,
        system_a TEXT NOT NULL,
        system_b TEXT NOT NULL,
        left_system TEXT NOT NULL,
        choice TEXT NOT NULL CHECK (choice IN ('left', 'right', 'tie')),
        winner TEXT,
        UNIQUE (reviewer, video_id, system_a, system_b),
        CHECK (system_a < system_b),
        CHECK (left_system IN (system_a, system_b))
    );
    CREATE INDEX votes_pair ON votes (system_a, system_b);
    """,
]


@dataclass(frozen=True)
class Vote:
    reviewer: str
    created: str
    video_id: str
    system_a: str
    system_b: str
    left_system: str
    choice: str
    winner: str | None  # None for a tie


class VoteStore:
    """Thread-safe (the review server answers from several threads)."""

    def __init__(self, path: str | Path = DEFAULT_DB) -> None:
        self.path = Path(path)
        try:
            self.conn = sqlite3.connect(self.path, check_same_thread=False)
        except sqlite3.Error as exc:
            raise ConfigError(
                f"{self.path}: cannot open the vote database: {exc}",
                hint="pass a writable path with --db",
            ) from exc
        self.lock = threading.Lock()
        self._migrate()

    def _migrate(self) -> None:
        with self.lock, self.conn:
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(_MIGRATIONS):
                raise ConfigError(
                    f"{self.path}: written by a newer diffcap (schema {version})",
                    hint="upgrade diffcap or use another --db",
                )
            for i in range(version, len(_MIGRATIONS)):
                self.conn.executescript(_MIGRATIONS[i])
                self.conn.execute(f"PRAGMA user_version = {i + 1}")

    def record(
        self, reviewer: str, video_id: str, system_a: str, system_b: str, *, left: str, choice: str
    ) -> bool:
        """Store one vote; False when this reviewer already voted on this item (kept)."""
        if choice not in CHOICES:
            raise ValueError(f"choice must be one of {CHOICES}, not {choice!r}")
        a, b = sorted((system_a, system_b))
        if left not in (a, b) or a == b:
            raise ValueError(f"left system {left!r} is not one of the pair ({a!r}, {b!r})")
        right = b if left == a else a
        winner = None if choice == "tie" else (left if choice == "left" else right)
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self.lock, self.conn:
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO votes (reviewer, created, video_id, system_a, system_b,"
                " left_system, choice, winner) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (reviewer, now, video_id, a, b, left, choice, winner),
            )
            return cur.rowcount == 1

    def voted(self, reviewer: str) -> set[tuple[str, str, str]]:
        """(video_id, system_a, system_b) of every item ``reviewer`` has voted on."""
        with self.lock:
            rows = self.conn.execute(
                "SELECT video_id, system_a, system_b FROM votes WHERE reviewer = ?", (reviewer,)
            )
            return {(str(a), str(b), str(c)) for a, b, c in rows}

    def votes(self) -> list[Vote]:
        with self.lock:
            rows = self.conn.execute(
                "SELECT reviewer, created, video_id, system_a, system_b, left_system, choice,"
                " winner FROM votes ORDER BY id"
            ).fetchall()
        return [Vote(*r) for r in rows]

    def close(self) -> None:
        self.conn.close()
