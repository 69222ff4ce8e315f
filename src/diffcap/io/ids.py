"""Video ids: the one id policy of every command (stable, filesystem-safe, unique without
regard to case), and the value types of inputs.

Ids are bound to a source (path/URL + span), never to a position in the input list: a known
source keeps its stored id; a new one gets the bare stem only when no other source (known or
new) claims that stem (compared without case: ``Clip2`` and ``clip2`` would collide as
folders on case-insensitive filesystems), else ``stem-<hash of the source>``. So ids do not
depend on the order of the inputs, nor on what else is listed, in this run or the next.

    video_ids(["a/clip.mp4", "b/clip.mp4"])     # ["clip-1a2b3c4d", "clip-5e6f7a8b"]
"""

from __future__ import annotations

import functools
import logging
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from diffcap.io.idsql import IdAssigner

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

#: What identifies a video: its source (absolute path or URL) and span.
SpanKey = tuple[str, float | None, float | None]
#: One raw input: (row fields, where it came from, 1-based manifest row or 0).
RawInput = tuple[dict[str, Any], str, int]


class Registered(Protocol):
    """A video the run DB already holds (``diffcap.store.VideoEntry`` fits)."""

    @property
    def video_id(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def start(self) -> float | None: ...
    @property
    def end(self) -> float | None: ...


@dataclass(frozen=True)
class VideoItem:
    """One video (or span of a video) to caption."""

    video_id: str
    source: str  # absolute file path or URL
    start: float | None = None
    end: float | None = None
    caption: str | None = None

    @property
    def is_url(self) -> bool:
        return is_url(self.source)


@dataclass(frozen=True)
class BadRow:
    source: str
    row: int
    reason: str
    error: str


@dataclass
class InputScan:
    items: list[VideoItem] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)


def is_url(text: str) -> bool:
    """Anything with a scheme other than a drive letter counts as a URL (checked later)."""
    scheme = urlparse(text).scheme
    return len(scheme) > 1


def assign_ids(
    raw: list[RawInput], known: Iterable[Registered], scan: InputScan
) -> list[VideoItem]:
    """Stable, filesystem-safe, unique ids bound to sources (see the module docstring), for
    inputs given as a list; the run store registers streamed inputs with the same
    :class:`~diffcap.io.idsql.IdAssigner`."""
    conn = sqlite3.connect(":memory:")
    try:
        assigner = new_assigner(conn, known)
        for fields, origin, n in raw:
            assigner.add(fields, origin, n)
        assigner.assign(conflict_recorder(scan))
        return [VideoItem(*item) for item in assigner.items()]
    finally:
        conn.close()


def new_assigner(conn: sqlite3.Connection, known: Iterable[Registered] | None = None) -> Any:
    """An :class:`~diffcap.io.idsql.IdAssigner` with this module's id rules; without
    ``known`` it reads the known videos from ``conn``'s run store."""
    return IdAssigner(conn, known, safe_id=safe_id, default_id=_default_id)


def conflict_recorder(scan: InputScan) -> Any:
    """``on_conflict`` for ``IdAssigner.assign``: the clash becomes a bad row of ``scan``."""
    return functools.partial(_id_conflict, scan)


def _id_conflict(
    scan: InputScan, origin: str, n: int, vid: str, span: SpanKey, owner: SpanKey | None
) -> None:
    """An explicit id that names another video: a bad row, never a silent merge or rename."""
    other = f"{owner[0]}{_span_text(owner)}" if owner else "another video"
    error = (
        f"video_id {vid!r} already names {other}, not {span[0]}{_span_text(span)}; give this "
        "row another video_id (ids must be unique in the run)"
    )
    scan.bad.append(BadRow(origin, n, "id_conflict", error))
    log.warning("%s row %d: %s", origin, n, error)


def _span_text(span: SpanKey) -> str:
    if span[1] is None and span[2] is None:
        return ""
    end = _fmt(span[2]) if span[2] is not None else "end"
    return f" [{_fmt(span[1] or 0.0)}-{end}]"


def video_ids(sources: list[str]) -> list[str]:
    """Ids for bare sources (paths or URLs, no spans, no run DB): the policy above."""
    spans = [src if is_url(src) else str(Path(src).expanduser().resolve()) for src in sources]
    unique = list(dict.fromkeys(spans))
    items = assign_ids([({"source": s}, s, 0) for s in unique], (), InputScan())
    by_source = {item.source: item.video_id for item in items}
    return [by_source[s] for s in spans]


def _default_id(source: str, start: float | None, end: float | None) -> str:
    stem = Path(urlparse(source).path if is_url(source) else source).stem or "video"
    if start is None and end is None:
        return stem
    return f"{stem}_{_fmt(start or 0.0)}-{_fmt(end) if end is not None else 'end'}"


def _fmt(x: float) -> str:
    return f"{x:.3f}".rstrip("0").rstrip(".")


def safe_id(text: str) -> str:
    """Filesystem-safe id (keyframe folders are named after it)."""
    out = _UNSAFE.sub("_", text).strip("._") or "video"
    return out[:120]
