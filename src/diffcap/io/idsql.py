"""The id policy of :mod:`diffcap.io.ids`, run over SQLite temporary tables, so a
manifest of millions of rows is registered without ever being held in memory.

    assigner = IdAssigner(conn)                  # the run store's connection: knows `videos`
    for fields, origin, n in raw_inputs:         # streamed: one row at a time
        assigner.add(fields, origin, n)
    assigner.assign(scan)                        # explicit-id conflicts go to scan.bad
    for item in assigner.items(): ...            # VideoItems in input order, chunk by chunk

``IdAssigner(sqlite3.connect(":memory:"), known=[...])`` runs the same policy for callers
with a list (:func:`diffcap.io.ids.assign_ids`). Three passes, so no id depends on the
order of the inputs: sources the DB knows keep their ids, then explicit manifest ids (in
input order, a clash is a bad row), then default ids: the bare stem when exactly one new
source wants it and nobody holds it, else ``stem-<sha1 of the span>[:8]`` (in span order,
so even the rare ``-2`` does not depend on input order). Ids are compared without case.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from typing import Any

log = logging.getLogger(__name__)

#: Rows read back per query (keyset pages, so nothing is held but one page).
PAGE = 5000

_SCHEMA = (
    "DROP TABLE IF EXISTS temp.reg",
    "DROP TABLE IF EXISTS temp.taken",
    "DROP TABLE IF EXISTS temp.once",
    "CREATE TEMP TABLE reg (n INTEGER PRIMARY KEY, span TEXT NOT NULL UNIQUE,"
    " source TEXT NOT NULL, t0 REAL, t1 REAL, asked TEXT, caption TEXT, origin TEXT NOT NULL,"
    " row INTEGER NOT NULL, base TEXT, vid TEXT, vid_lc TEXT)",
    "CREATE INDEX temp.reg_vid_lc ON reg(vid_lc)",
    "CREATE TEMP TABLE taken (lc TEXT PRIMARY KEY, source, t0 REAL, t1 REAL)",
)


class IdAssigner:
    """Streamed inputs in, ids out (see the module docstring)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        known: Iterable[Any] | None = None,
        *,
        safe_id: Callable[[str], str],
        default_id: Callable[[str, float | None, float | None], str],
    ) -> None:
        self.conn, self.safe_id, self.default_id = conn, safe_id, default_id
        for sql in _SCHEMA:
            conn.execute(sql)
        self.known = "main.videos"
        if known is not None:  # a list from the caller instead of a run store's table
            conn.execute("DROP TABLE IF EXISTS temp.known")
            conn.execute(
                "CREATE TEMP TABLE known (seq INTEGER PRIMARY KEY, video_id TEXT, source TEXT,"
                ' start REAL, "end" REAL)'
            )
            conn.execute("CREATE INDEX temp.known_source ON known(source)")
            conn.executemany(
                'INSERT INTO known (video_id, source, start, "end") VALUES (?, ?, ?, ?)',
                ((k.video_id, k.source, k.start, k.end) for k in known),
            )
            self.known = "temp.known"

    def add(self, fields: dict[str, Any], origin: str, n: int) -> None:
        """One raw input; a span listed again is warned about and captioned once."""
        span = (fields["source"], _seconds(fields.get("start")), _seconds(fields.get("end")))
        asked = fields.get("video_id") or None
        base = None if asked else self.safe_id(self.default_id(*span))
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO reg (span, source, t0, t1, asked, caption, origin, row, base)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                repr(span),
                _bindable(span[0]),
                *span[1:],
                asked,
                fields.get("caption"),
                _bindable(origin),
                n,
                base,
            ),
        )
        if not cur.rowcount:
            log.warning("%s listed twice; captioning it once", span[0])

    def assign(self, on_conflict: Callable[[str, int, str, tuple, tuple | None], None]) -> None:
        """Give every input an id; ``on_conflict(origin, n, vid, span, owner_span)`` for an
        explicit id that names another video (that input gets none)."""
        self._known_ids()
        self._explicit_ids(on_conflict)
        self._default_ids()

    def _known_ids(self) -> None:
        k = self.known
        self.conn.execute(  # the first registration of an id (in input order) owns it
            f'INSERT OR IGNORE INTO taken SELECT lower(video_id), source, start, "end" FROM {k}'
            " ORDER BY seq"
        )
        for source, ids in self.conn.execute(
            f"SELECT source, group_concat(video_id, ', ') FROM (SELECT * FROM {k} ORDER BY seq)"
            ' GROUP BY source, start, "end" HAVING COUNT(*) > 1'
        ):
            log.warning(
                "%s is registered under several ids (%s); the first one is used", _text(source), ids
            )
        self.conn.execute(
            f"UPDATE reg SET vid = (SELECT k.video_id FROM {k} k WHERE k.source = reg.source"
            ' AND k.start IS reg.t0 AND k."end" IS reg.t1 ORDER BY k.seq LIMIT 1)'
        )
        self.conn.execute("UPDATE reg SET vid_lc = lower(vid) WHERE vid IS NOT NULL")
        for source, vid, asked in self._pages(
            "SELECT n, source, vid, asked FROM reg WHERE vid IS NOT NULL AND asked IS NOT NULL"
        ):
            if self.safe_id(asked) != vid:
                log.warning(
                    "%s is already registered as %r; the manifest's video_id %r is ignored",
                    source,
                    vid,
                    asked,
                )

    def _explicit_ids(self, on_conflict: Callable[..., None]) -> None:
        sql = (
            "SELECT n, asked, source, t0, t1, origin, row FROM reg"
            " WHERE vid IS NULL AND asked IS NOT NULL"
        )
        for n, asked, source, t0, t1, origin, row in self._pages(sql, with_key=True):
            vid = self.safe_id(asked)
            if self._take(vid.lower(), (source, t0, t1)):
                self.conn.execute(
                    "UPDATE reg SET vid = ?, vid_lc = ? WHERE n = ?", (vid, vid.lower(), n)
                )
            else:
                on_conflict(
                    _text(origin), row, vid, (_text(source), t0, t1), self._owner(vid.lower())
                )

    def _owner(self, lc: str) -> tuple | None:
        got = self.conn.execute("SELECT source, t0, t1 FROM taken WHERE lc = ?", (lc,)).fetchone()
        return (_text(got[0]), got[1], got[2]) if got else None

    def _default_ids(self) -> None:
        c = self.conn
        c.execute(
            "CREATE TEMP TABLE once AS SELECT lower(base) AS lc FROM reg WHERE vid IS NULL"
            " AND asked IS NULL GROUP BY lower(base) HAVING COUNT(*) = 1"
        )
        c.execute("DELETE FROM once WHERE lc IN (SELECT lc FROM taken)")
        c.execute(
            "UPDATE reg SET vid = base, vid_lc = lower(base) WHERE vid IS NULL AND asked IS NULL"
            " AND lower(base) IN (SELECT lc FROM once)"
        )
        c.execute(
            "INSERT INTO taken SELECT r.vid_lc, r.source, r.t0, r.t1 FROM reg r JOIN once o"
            " ON r.vid_lc = o.lc AND r.vid = r.base AND r.asked IS NULL"
        )
        c.execute("DROP TABLE temp.once")
        last = ""
        while True:  # in span order, keyset-paged: nothing depends on the input order
            page = c.execute(
                "SELECT n, span, base, source, t0, t1 FROM reg WHERE vid IS NULL AND asked IS NULL"
                " AND span > ?"
                " ORDER BY span LIMIT ?",
                (last, PAGE),
            ).fetchall()
            for n, span, base, source, t0, t1 in page:
                stem = f"{base}-{hashlib.sha1(span.encode()).hexdigest()[:8]}"
                vid, k = stem, 1
                while not self._take(vid.lower(), (source, t0, t1)):
                    k += 1
                    vid = f"{stem}-{k}"
                c.execute("UPDATE reg SET vid = ?, vid_lc = ? WHERE n = ?", (vid, vid.lower(), n))
            if len(page) < PAGE:
                return
            last = page[-1][1]

    def _take(self, lc: str, span: tuple) -> bool:
        cur = self.conn.execute("INSERT OR IGNORE INTO taken VALUES (?, ?, ?, ?)", (lc, *span))
        return bool(cur.rowcount)

    def _pages(self, sql: str, *, with_key: bool = False) -> Iterator[tuple]:
        """Rows of ``sql`` (whose first column is ``n``) in input order, a page at a time."""
        last = 0
        while True:
            page = self.conn.execute(f"{sql} AND n > ? ORDER BY n LIMIT ?", (last, PAGE)).fetchall()
            for row in page:
                yield tuple(row) if with_key else tuple(row)[1:]
            if len(page) < PAGE:
                return
            last = page[-1][0]

    def items(self) -> Iterator[tuple[str, str, float | None, float | None, str | None]]:
        """(id, source, start, end, caption) of every input with an id, in input order."""
        for vid, source, t0, t1, caption in self._pages(
            "SELECT n, vid, source, t0, t1, caption FROM reg WHERE vid IS NOT NULL"
        ):
            yield vid, _text(source), t0, t1, caption

    def ids(self) -> Iterator[str]:
        for (vid,) in self._pages("SELECT n, vid FROM reg WHERE vid IS NOT NULL"):
            yield vid

    def count(self) -> int:
        return int(
            self.conn.execute("SELECT COUNT(*) FROM reg WHERE vid IS NOT NULL").fetchone()[0]
        )


def _seconds(x: float | None) -> float | None:
    """Spans compare by value: ``-0.0`` is ``0.0`` (a manifest may write either)."""
    return None if x is None else float(x) + 0.0


def _bindable(source: str) -> str | bytes:
    """A path that is not valid UTF-8 (undecodable bytes, surrogate-escaped by Python) is
    bound as bytes: SQLite text cannot hold it, and no run store does."""
    try:
        source.encode("utf-8")
    except UnicodeEncodeError:
        return source.encode("utf-8", "surrogateescape")
    return source


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
