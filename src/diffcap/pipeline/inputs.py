"""Collect the videos of a run from directories, globs, single files, URLs and manifests.

A manifest is a CSV, JSONL or Parquet table with one video per row: a ``path`` or ``url``
column (an http(s) URL or a file path, relative paths resolved against the manifest's folder),
optional ``start``/``end`` seconds (caption only that span, as Panda-70M manifests do),
optional ``video_id`` and an optional existing short ``caption``.

    scan = collect_inputs(["videos/", "clips/*.mp4", "panda.csv"], InputConfig())
    for item in scan.items:
        item.video_id, item.source, item.start, item.end
    scan.bad        # rows that name no usable video, with the reason
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from diffcap.config import InputConfig
from diffcap.errors import ConfigError

log = logging.getLogger(__name__)

MANIFEST_SUFFIXES = {".csv", ".jsonl", ".ndjson", ".parquet"}
_GLOB_CHARS = re.compile(r"[*?\[]")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


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


def collect_inputs(inputs: list[str], cfg: InputConfig) -> InputScan:
    """Resolve every input argument; raise ConfigError when an argument names nothing."""
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in cfg.extensions}
    raw: list[tuple[dict[str, Any], str]] = []  # (row fields, where it came from)
    scan = InputScan()
    for arg in inputs:
        raw.extend(_expand(arg, exts, scan))
    scan.items = _assign_ids(raw)
    return scan


def _expand(arg: str, exts: set[str], scan: InputScan) -> list[tuple[dict[str, Any], str]]:
    if is_url(arg):
        return [({"source": arg}, arg)]
    path = Path(arg).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in exts)
        if not files:
            log.warning("%s: no files with extensions %s", path, sorted(exts))
        return [({"source": str(p.resolve())}, arg) for p in files]
    if path.is_file():
        if path.suffix.lower() in MANIFEST_SUFFIXES:
            return _read_manifest(path, scan)
        return [({"source": str(path.resolve())}, arg)]
    if _GLOB_CHARS.search(arg):
        files = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        files = [p for p in files if p.is_file() and p.suffix.lower() in exts]
        if not files:
            raise ConfigError(
                f"{arg}: the glob matches no video files",
                hint=f"check the pattern; extensions: {sorted(exts)}",
            )
        return [({"source": str(p.resolve())}, arg) for p in files]
    raise ConfigError(
        f"{arg}: no such file, directory or glob",
        hint="pass video files, folders, globs, URLs or a manifest",
    )


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


def _read_manifest(path: Path, scan: InputScan) -> list[tuple[dict[str, Any], str]]:
    rows = read_table(path)
    out = []
    for n, row in enumerate(rows, 1):
        try:
            out.append((_parse_row(row, path.parent), str(path)))
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


def _assign_ids(raw: list[tuple[dict[str, Any], str]]) -> list[VideoItem]:
    """Stable, filesystem-safe, unique ids: the same inputs always give the same ids."""
    items: list[VideoItem] = []
    seen_ids: set[str] = set()
    seen_spans: set[tuple[str, float | None, float | None]] = set()
    for fields, _origin in raw:
        span = (fields["source"], fields.get("start"), fields.get("end"))
        if span in seen_spans:
            log.warning("%s listed twice; captioning it once", fields["source"])
            continue
        seen_spans.add(span)
        vid = safe_id(fields.get("video_id") or _default_id(*span))
        if vid in seen_ids:
            digest = hashlib.sha1(repr(span).encode()).hexdigest()[:8]
            base, n = f"{vid}-{digest}", 1
            vid = base
            while vid in seen_ids:
                n += 1
                vid = f"{base}-{n}"
        seen_ids.add(vid)
        items.append(
            VideoItem(
                vid, fields["source"], fields.get("start"), fields.get("end"), fields.get("caption")
            )
        )
    return items


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
