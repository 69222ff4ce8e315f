"""Collect the videos of a run from directories, globs, single files, URLs and manifests.

A manifest is a CSV, JSONL or Parquet table with one video per row: a ``path`` or ``url``
column (an http(s) URL or a file path, relative paths resolved against the manifest's folder),
optional ``start``/``end`` seconds (caption only that span, as Panda-70M manifests do),
optional ``video_id`` and an optional existing short ``caption``.

    scan = collect_inputs(["videos/", "clips/*.mp4", "panda.csv"], InputConfig())
    for item in scan.items:
        item.video_id, item.source, item.start, item.end
    scan.bad        # rows that name no usable video, with the reason

    # A rerun passes what the run DB already holds, so known sources keep their ids:
    scan = collect_inputs(inputs, cfg, known=store.registered())

Ids are bound to a source (path/URL + span), never to a position in the input list: a known
source keeps its stored id; a new one gets the bare stem only when no other source (known or
new) claims that stem, else ``stem-<hash of the source>``. So ids do not depend on the order
of the inputs, nor on what else is listed, in this run or the next.
"""

from __future__ import annotations

import csv
import errno
import glob
import hashlib
import json
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from diffcap.config import InputConfig
from diffcap.errors import ConfigError

log = logging.getLogger(__name__)

MANIFEST_SUFFIXES = {".csv", ".jsonl", ".ndjson", ".parquet"}
_GLOB_CHARS = re.compile(r"[*?\[]")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

#: What identifies a video: its source (absolute path or URL) and span.
SpanKey = tuple[str, float | None, float | None]
#: One raw input: (row fields, where it came from, 1-based manifest row or 0).
_Raw = tuple[dict[str, Any], str, int]


class Registered(Protocol):
    """A video the run DB already holds (``diffcap.store.VideoEntry`` fits)."""

    video_id: str
    source: str
    start: float | None
    end: float | None


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


def collect_inputs(
    inputs: list[str], cfg: InputConfig, known: Iterable[Registered] = ()
) -> InputScan:
    """Resolve every input argument; raise ConfigError when an argument names nothing.

    ``known``: the videos already registered in the run DB, in registration order; their
    sources keep their ids and their ids are not given to any other source.
    """
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in cfg.extensions}
    raw: list[_Raw] = []
    scan = InputScan()
    for arg in inputs:
        raw.extend(_expand(arg, exts, scan))
    scan.items = _assign_ids(raw, known, scan)
    return scan


def _expand(arg: str, exts: set[str], scan: InputScan) -> list[_Raw]:
    if is_url(arg):
        return [({"source": arg}, arg, 0)]
    path = Path(arg).expanduser()
    broken = _broken_link(path)
    if broken:
        scan.bad.append(BadRow(arg, 0, *broken))
        log.warning("%s: %s", arg, broken[1])
        return []
    if path.is_dir():
        return _scan_dir(path, arg, exts, scan)
    if path.is_file():
        if path.suffix.lower() in MANIFEST_SUFFIXES:
            return _read_manifest(path, scan)
        return [({"source": str(path.resolve())}, arg, 0)]
    if _GLOB_CHARS.search(arg):
        files = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        files = [p for p in files if p.is_file() and p.suffix.lower() in exts]
        if not files:
            raise ConfigError(
                f"{arg}: the glob matches no video files",
                hint=f"check the pattern; extensions: {sorted(exts)}",
            )
        return [({"source": str(p.resolve())}, arg, 0) for p in files]
    if path.suffix.lower() in exts:  # a video that is not there: a bad input, not fatal
        scan.bad.append(BadRow(arg, 0, "not_found", f"{arg}: no such file"))
        log.warning("%s: no such file", arg)
        return []
    raise ConfigError(
        f"{arg}: no such file, directory or glob",
        hint="pass video files, folders, globs, URLs or a manifest",
    )


def _scan_dir(folder: Path, arg: str, exts: set[str], scan: InputScan) -> list[_Raw]:
    """Videos under ``folder``, recursively; broken symlinks among them are bad inputs."""
    found: list[_Raw] = []
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() not in exts:
            continue
        broken = _broken_link(p)
        if broken:
            scan.bad.append(BadRow(str(p), 0, *broken))
            log.warning("%s: %s", p, broken[1])
        elif p.is_file():
            found.append(({"source": str(p.resolve())}, arg, 0))
    if not found:
        log.warning("%s: no files with extensions %s", folder, sorted(exts))
    return found


def _broken_link(path: Path) -> tuple[str, str] | None:
    """(reason, message) for a dangling or looping symlink, else None."""
    if not path.is_symlink():
        return None
    try:
        path.resolve(strict=True)
    except RuntimeError:  # Python 3.10-3.12 raise this for a loop
        return "symlink_loop", f"{path}: the symbolic link loops"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink_loop", f"{path}: the symbolic link loops"
        target = os.readlink(path)
        return "dangling_symlink", f"{path}: the symbolic link points to nothing ({target})"
    return None


def read_table(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV / JSONL / Parquet manifest as dicts."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            return [dict(r) for r in csv.DictReader(f)]
    if suffix in {".jsonl", ".ndjson"}:
        rows = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                obj = {"__error__": f"line {n}: not JSON ({exc.msg})"}
            rows.append(obj if isinstance(obj, dict) else {"__error__": "not a JSON object"})
        return rows
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def _read_manifest(path: Path, scan: InputScan) -> list[_Raw]:
    rows = read_table(path)
    out = []
    for n, row in enumerate(rows, 1):
        try:
            out.append((_parse_row(row, path.parent), str(path), n))
        except ValueError as exc:
            scan.bad.append(BadRow(str(path), n, "bad_row", str(exc)))
            log.warning("%s row %d: %s", path, n, exc)
    log.info("%s: %d rows, %d usable", path, len(rows), len(out))
    return out


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _parse_row(row: dict[str, Any], base: Path) -> dict[str, Any]:
    if "__error__" in row:
        raise ValueError(row["__error__"])
    where = next((row[k] for k in ("path", "url") if not _blank(row.get(k))), None)
    if where is None:
        raise ValueError("no 'path' or 'url' value")
    where = str(where).strip()
    if not is_url(where):
        p = Path(where).expanduser()
        where = str((p if p.is_absolute() else base / p).resolve())
    start, end = _seconds(row.get("start"), "start"), _seconds(row.get("end"), "end")
    if start is not None and start < 0:
        raise ValueError(f"start {start} is negative")
    if start is not None and end is not None and end <= start:
        raise ValueError(f"end {end} is not after start {start}")
    vid = None if _blank(row.get("video_id")) else str(row["video_id"])
    cap = None if _blank(row.get("caption")) else str(row["caption"])
    return {"source": where, "start": start, "end": end, "video_id": vid, "caption": cap}


def _seconds(value: Any, name: str) -> float | None:
    if _blank(value):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} {value!r} is not a number of seconds") from None
    if not math.isfinite(out):
        raise ValueError(f"{name} {value!r} is not finite")
    return out


def _assign_ids(raw: list[_Raw], known: Iterable[Registered], scan: InputScan) -> list[VideoItem]:
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


def _unique_spans(raw: list[_Raw]) -> list[tuple[SpanKey, dict[str, Any], str, int]]:
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
