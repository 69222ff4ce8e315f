"""Ordered, numbered schema migrations for ``run.sqlite``.

Each migration runs once, in order, inside a transaction; the applied version is recorded both
in the ``migrations`` table (with the time) and in ``PRAGMA user_version``. Never edit a
released migration: append a new one.

    conn = sqlite3.connect("run.sqlite")
    apply_migrations(conn)          # idempotent
    schema_version(conn)            # == len(MIGRATIONS)
"""

from __future__ import annotations

import sqlite3
import time

#: (version, description, SQL script). Versions start at 1 and increase by one.
MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "videos, records, request cache, run metadata",
        """
        CREATE TABLE videos (
            video_id     TEXT PRIMARY KEY,
            seq          INTEGER NOT NULL,          -- input order, for stable outputs
            source       TEXT NOT NULL,             -- path or URL as given
            start        REAL,
            end          REAL,
            caption      TEXT,                      -- short caption (manifest or generated)
            status       TEXT NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'done', 'failed', 'filtered')),
            stage        TEXT,                      -- stage of the last failure / filter
            reason       TEXT,
            error        TEXT,
            attempts     INTEGER NOT NULL DEFAULT 0,
            duration     REAL,
            duplicate_of TEXT,
            similarity   REAL,
            updated_at   REAL NOT NULL
        );
        CREATE INDEX videos_status ON videos(status);
        CREATE TABLE records (
            video_id   TEXT PRIMARY KEY REFERENCES videos(video_id),
            record     TEXT NOT NULL,               -- VideoRecord JSON
            created_at REAL NOT NULL
        );
        CREATE TABLE requests (
            cache_key         TEXT PRIMARY KEY,     -- ModelRequest.cache_key(backend)
            backend           TEXT NOT NULL,
            model             TEXT NOT NULL,
            text              TEXT NOT NULL,
            finish_reason     TEXT,
            prompt_tokens     INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd          REAL NOT NULL DEFAULT 0,
            created_at        REAL NOT NULL
        );
        CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """,
    ),
    (
        2,
        "bad input rows (manifest rows that name no usable video)",
        """
        CREATE TABLE bad_inputs (
            source  TEXT NOT NULL,                  -- manifest path
            row     INTEGER NOT NULL,               -- 1-based data row number
            reason  TEXT NOT NULL,
            error   TEXT NOT NULL,
            PRIMARY KEY (source, row)
        );
        """,
    ),
    (
        3,
        "damage seen while reading a video (truncated or corrupt files)",
        """
        ALTER TABLE videos ADD COLUMN damaged TEXT;  -- Damage JSON, NULL when intact
        """,
    ),
    (
        4,
        "indexes for millions of videos: pending ones streamed in input order, sources looked up",
        """
        CREATE INDEX videos_status_seq ON videos(status, seq);
        CREATE INDEX videos_source ON videos(source);
        """,
    ),
    (
        5,
        "Ray worker deaths per video, counted before a video runs alone (poison-video limit)",
        """
        CREATE TABLE worker_deaths (
            video_id TEXT PRIMARY KEY REFERENCES videos(video_id),
            deaths   INTEGER NOT NULL
        );
        """,
    ),
]


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def apply_migrations(conn: sqlite3.Connection) -> list[int]:
    """Apply every migration newer than the database's version; return those applied.

    ``BEGIN IMMEDIATE`` takes the write lock first, so two processes opening a fresh run dir
    at once cannot both apply migration 1.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations "
        "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    applied: list[int] = []
    for version, description, script in MIGRATIONS:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if schema_version(conn) >= version:
                conn.execute("ROLLBACK")
                continue
            for statement in _split(script):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO migrations (version, description, applied_at) VALUES (?, ?, ?)",
                (version, description, time.time()),
            )
            # PRAGMA does not take parameters; version is our own int.
            conn.execute(f"PRAGMA user_version = {int(version)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied


def _split(script: str) -> list[str]:
    """Split a script into statements (executescript would commit our transaction)."""
    return [s.strip() for s in script.split(";") if s.strip()]
