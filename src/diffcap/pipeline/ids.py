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

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

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
    """Stable, filesystem-safe, unique ids bound to sources (see the module docstring).

    Three passes, so no id depends on the order of the inputs: sources the DB knows keep
    their ids, then explicit manifest ids, then default ids (the stem) for the rest.
    """
    by_span, taken = _known_ids(known)
    rows = _unique_spans(raw)
    chosen: dict[SpanKey, str] = {}
    for span, fields, _origin, _n in rows:
        if span in by_span:
            chosen[span] = by_span[span]
            asked = fields.get("video_id")
            if asked and safe_id(asked) != chosen[span]:
                log.warning(
                    "%s is already registered as %r; the manifest's video_id %r is ignored",
                    span[0],
                    chosen[span],
                    asked,
                )
    owners = {vid.lower(): span for span, vid in by_span.items()}
    for span, fields, origin, n in rows:
        if span in chosen or not fields.get("video_id"):
            continue
        vid = safe_id(fields["video_id"])
        if vid.lower() in taken:
            _id_conflict(scan, origin, n, vid, span, owners.get(vid.lower()))
            continue
        chosen[span], owners[vid.lower()] = vid, span
        taken.add(vid.lower())
    _assign_default_ids(
        [r[0] for r in rows if r[0] not in chosen and not r[1].get("video_id")], chosen, taken
    )
    return [
        VideoItem(chosen[span], span[0], span[1], span[2], fields.get("caption"))
        for span, fields, _origin, _n in rows
        if span in chosen
    ]


def _known_ids(known: Iterable[Registered]) -> tuple[dict[SpanKey, str], set[str]]:
    """(source span -> its id, every id in use). A span registered under several ids (older
    diffcap versions bound ids to list positions) keeps its first one."""
    by_span: dict[SpanKey, str] = {}
    taken: set[str] = set()
    for v in known:
        taken.add(v.video_id.lower())
        span = (v.source, v.start, v.end)
        if span in by_span:
            log.warning(
                "%s is registered under several ids (%s, %s); the first one is used",
                v.source,
                by_span[span],
                v.video_id,
            )
            continue
        by_span[span] = v.video_id
    return by_span, taken


def _unique_spans(raw: list[RawInput]) -> list[tuple[SpanKey, dict[str, Any], str, int]]:
    rows = []
    seen: set[SpanKey] = set()
    for fields, origin, n in raw:
        span = (fields["source"], fields.get("start"), fields.get("end"))
        if span in seen:
            log.warning("%s listed twice; captioning it once", fields["source"])
            continue
        seen.add(span)
        rows.append((span, fields, origin, n))
    return rows


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


def _assign_default_ids(spans: list[SpanKey], chosen: dict[SpanKey, str], taken: set[str]) -> None:
    """The bare stem when this is the only source that wants it and nobody holds it, else
    ``stem-<sha1 of the span>`` (deterministic per source). Ids are compared without case
    (``Clip2`` and ``clip2`` would collide as folders on case-insensitive filesystems);
    ``taken`` holds lower-cased ids."""
    base = {span: safe_id(_default_id(*span)) for span in spans}
    wanted = Counter(b.lower() for b in base.values())
    rest = []
    for span in spans:
        if wanted[base[span].lower()] == 1 and base[span].lower() not in taken:
            chosen[span] = base[span]
            taken.add(base[span].lower())
        else:
            rest.append(span)
    for span in sorted(rest, key=repr):  # sorted: even the rare "-2" does not depend on order
        digest = hashlib.sha1(repr(span).encode()).hexdigest()[:8]
        vid = stem = f"{base[span]}-{digest}"
        n = 1
        while vid.lower() in taken:
            n += 1
            vid = f"{stem}-{n}"
        chosen[span] = vid
        taken.add(vid.lower())


def video_ids(sources: list[str]) -> list[str]:
    """Ids for bare sources (paths or URLs, no spans, no run DB): the policy above."""
    spans: list[SpanKey] = []
    for src in sources:
        span = (src if is_url(src) else str(Path(src).expanduser().resolve()), None, None)
        spans.append(span)
    chosen: dict[SpanKey, str] = {}
    _assign_default_ids(list(dict.fromkeys(spans)), chosen, set())
    return [chosen[s] for s in spans]


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
