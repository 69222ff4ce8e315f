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
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from diffcap.config import InputConfig
from diffcap.errors import ConfigError
from diffcap.io.ids import (
    BadRow,
    InputScan,
    RawInput,
    Registered,
    SpanKey,
    VideoItem,
    assign_ids,
    is_url,
    safe_id,
    video_ids,
)

log = logging.getLogger(__name__)

MANIFEST_SUFFIXES = {".csv", ".jsonl", ".ndjson", ".parquet"}
_GLOB_CHARS = re.compile(r"[*?\[]")


def collect_inputs(
    inputs: list[str], cfg: InputConfig, known: Iterable[Registered] = ()
) -> InputScan:
    """Resolve every input argument; raise ConfigError when an argument names nothing.

    ``known``: the videos already registered in the run DB, in registration order; their
    sources keep their ids and their ids are not given to any other source.
    """
    scan = InputScan()
    scan.items = assign_ids(list(iter_raw_inputs(inputs, cfg, scan)), known, scan)
    return scan


def iter_raw_inputs(inputs: list[str], cfg: InputConfig, scan: InputScan) -> Iterator[RawInput]:
    """The raw inputs of every argument, streamed (manifests row by row); bad ones go to
    ``scan.bad``. Ids are assigned afterwards (``assign_ids`` or the run store)."""
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in cfg.extensions}
    for arg in inputs:
        for raw in _expand(arg, exts, scan):
            if _storable(raw, scan):
                yield raw


def _storable(raw: RawInput, scan: InputScan) -> bool:
    """A path with bytes that are not UTF-8 cannot be stored in the run DB: a bad input."""
    source = raw[0]["source"]
    try:
        source.encode("utf-8")
    except UnicodeEncodeError:
        error = f"{source!a}: the path is not valid UTF-8; rename the file"
        scan.bad.append(BadRow(raw[1], raw[2], "bad_path", error))
        log.warning("%s", error)
        return False
    return True


def _expand(arg: str, exts: set[str], scan: InputScan) -> Iterable[RawInput]:
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


def _scan_dir(folder: Path, arg: str, exts: set[str], scan: InputScan) -> list[RawInput]:
    """Videos under ``folder``, recursively; broken symlinks among them are bad inputs."""
    found: list[RawInput] = []
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
    return list(iter_table(path))


def iter_table(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a CSV / JSONL / Parquet manifest as dicts, streamed (a JSONL line or a
    Parquet batch at a time: a manifest of millions of rows is never held whole)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            yield from (dict(r) for r in csv.DictReader(f))
        return
    if suffix in {".jsonl", ".ndjson"}:
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    yield _json_row(line, n)
        return
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
        yield from batch.to_pylist()


def _json_row(line: str, n: int) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return {"__error__": f"line {n}: not JSON ({exc.msg})"}
    return obj if isinstance(obj, dict) else {"__error__": "not a JSON object"}


def _read_manifest(path: Path, scan: InputScan) -> Iterator[RawInput]:
    rows = usable = 0
    for n, row in enumerate(iter_table(path), 1):
        rows += 1
        try:
            yield (_parse_row(row, path.parent), str(path), n)
            usable += 1
        except ValueError as exc:
            scan.bad.append(BadRow(str(path), n, "bad_row", str(exc)))
            log.warning("%s row %d: %s", path, n, exc)
    log.info("%s: %d rows, %d usable", path, rows, usable)


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


__all__ = [
    "BadRow",
    "InputScan",
    "Registered",
    "SpanKey",
    "VideoItem",
    "collect_inputs",
    "is_url",
    "iter_raw_inputs",
    "iter_table",
    "read_table",
    "safe_id",
    "video_ids",
]
