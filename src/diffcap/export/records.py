"""Reading records for export: a run directory or a records JSONL file, with path helpers.

Keyframe ``file`` paths in records are relative to the directory holding the records file
(``RUN_DIR/records`` for a run). :class:`RecordSource` resolves them to absolute paths, and
:func:`relative_to_output` writes them relative to an export's own folder.

    src = open_records("runs/demo")              # or "captions.jsonl"
    for rec in src:                              # VideoRecord, keyframe files absolute
        rec.keyframes[0].file
    src.run_dir                                  # Path("runs/demo") or None
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from diffcap.errors import ConfigError, DiffcapError, VideoError, VideoNotFound
from diffcap.fsutil import is_keyframe_path
from diffcap.io.records import absolute_keyframes, relative_to_output
from diffcap.pipeline import iter_records
from diffcap.store.rundir import RunDir
from diffcap.timeline import VideoRecord

logger = logging.getLogger(__name__)

__all__ = [
    "BadKeyframe",
    "RecordSource",
    "clamp_window",
    "failure_reason",
    "open_records",
    "record_span",
    "relative_to_output",
    "resolve_video",
]


class BadKeyframe(ConfigError):
    """A record names a keyframe image that cannot be read, or a file that is not a keyframe
    image of its video: that record is skipped, the export goes on."""

    reason = "bad_keyframe"


@dataclass(frozen=True)
class RecordSource:
    """Where records come from. Iterating yields records with absolute keyframe paths."""

    path: Path
    run_dir: Path | None  # set when ``path`` is a run directory
    base_dir: Path  # keyframe ``file`` paths are relative to this

    def __iter__(self) -> Iterator[VideoRecord]:
        for rec in self._raw():
            yield absolute_keyframes(rec, self.base_dir)

    def count(self) -> int:
        """Number of records (one cheap pass; used for progress bars)."""
        return sum(1 for _ in self._raw())

    def _raw(self) -> Iterator[VideoRecord]:
        if self.run_dir is None:
            yield from _read_jsonl(self.path)
        else:
            yield from _run_records(self.run_dir)


def open_records(path: str | os.PathLike[str]) -> RecordSource:
    """A run directory (``RUN_DIR/run.sqlite`` or ``RUN_DIR/records/records-*.jsonl``) or a
    records JSONL file (``diffcap caption`` output)."""
    p = Path(path).expanduser()
    if p.is_dir():
        run = RunDir(p)
        if not run.has_store() and not run.shards():
            raise ConfigError(
                f"{p}: not a diffcap run directory (no run.sqlite or records/records-*.jsonl)",
                hint="pass the --out folder of `diffcap run` or a records .jsonl file",
            )
        return RecordSource(p, p, run.records)
    if p.is_file():
        return RecordSource(p, None, p.parent)
    raise ConfigError(
        f"{p}: no such run directory or records file",
        hint="pass the --out folder of `diffcap run` or the .jsonl of `diffcap caption`",
    )


def _run_records(run_dir: Path) -> Iterator[VideoRecord]:
    """The run's records: from its database through the pipeline's reader when there is
    one, else from the record shards (a copied run directory without run.sqlite)."""
    if RunDir(run_dir).has_store():
        yield from iter_records(run_dir)
        return
    for shard in RunDir(run_dir).shards():
        yield from _read_jsonl(shard)


def _read_jsonl(path: Path) -> Iterator[VideoRecord]:
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield VideoRecord.from_json(json.loads(line))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ConfigError(
                    f"{path}:{n}: not a diffcap record ({exc})",
                    hint="pass records written by `diffcap caption` or `diffcap run`",
                ) from exc


def keyframe_files(rec: VideoRecord) -> list[Path]:
    """Absolute keyframe image paths; a clear error when one is missing or is not a keyframe
    image of this record's video (:func:`~diffcap.fsutil.is_keyframe_path`)."""
    out = []
    for k in rec.keyframes:
        if not k.file:
            raise ConfigError(
                f"video '{rec.video_id}': keyframe {k.idx} has no image file in the record",
                hint="re-run captioning so keyframe images are saved",
            )
        p = Path(k.file)
        if not is_keyframe_path(os.path.realpath(p), rec.video_id):
            raise BadKeyframe(
                f"video '{rec.video_id}': {p} is not a keyframe image of this video "
                f"(expected keyframes/{rec.video_id}/*.jpg|png); not opened",
                hint="export records written by diffcap, with their keyframes folder",
            )
        if not p.is_file():
            raise ConfigError(
                f"video '{rec.video_id}': keyframe image {p} is missing",
                hint="keep the keyframes folder next to the records file (or re-run keyframes)",
            )
        out.append(p)
    return out


def resolve_video(rec: VideoRecord, base_dir: Path) -> Path:
    """The record's video file: as written, else relative to the records' folder."""
    p = Path(rec.video_path).expanduser()
    for cand in (p, base_dir / p, base_dir.parent / p):
        if cand.is_file():
            return cand.resolve()
    raise VideoNotFound(
        rec.video_path,
        f"video file of '{rec.video_id}' not found",
        hint="run the export where the videos are reachable at the recorded paths",
    )


def record_span(rec: VideoRecord) -> tuple[float | None, float | None]:
    """The part of the video a record's captions describe, as recorded (``None`` = open).

    Precedence: the manifest span (record key ``span``: ``{"start", "end"}`` or
    ``[start, end]``, set by ``diffcap run`` for a manifest row with start/end), else the
    summary caption's ``start``/``end`` (the keyframe window of ``--start``/``--end``), else
    the whole video. The span wins because it is what the run was asked to caption; the
    summary's window normally equals it.
    """
    span = (rec.extra or {}).get("span")
    start = end = None
    if isinstance(span, dict):
        start, end = span.get("start"), span.get("end")
    elif isinstance(span, (list, tuple)) and len(span) == 2:
        start, end = span
    if start is None and end is None and rec.summary is not None:
        start, end = rec.summary.start, rec.summary.end
    return (
        None if start is None else float(start),
        None if end is None else float(end),
    )


def clamp_window(
    span: tuple[float | None, float | None], duration: float, video_id: str = ""
) -> tuple[float, float]:
    """``span`` closed and clamped to ``[0, duration]`` (the probed video's duration)."""
    start = max(0.0, span[0] or 0.0)
    end = duration if span[1] is None else float(span[1])
    if duration > 0:
        end = min(end, duration)
    if end <= start:
        raise ConfigError(
            f"video '{video_id}': span {span[0]}-{span[1]} s is outside the {duration:.3f} s video",
            hint="check the record's span / the manifest's start and end",
        )
    return start, end


def failure_reason(exc: DiffcapError) -> str:
    """A short skip reason for the summary line (``skipped 2 video not found``)."""
    if isinstance(exc, VideoNotFound):
        return "video not found"
    if isinstance(exc, BadKeyframe):
        return "bad keyframe image"
    if isinstance(exc, VideoError):
        return f"unreadable video ({exc.reason})"
    return f"failed ({exc.reason})"


def system_names(paths: Sequence[Path]) -> list[str]:
    """``run dir`` or ``file stem`` names; parents are prepended until the names differ."""
    resolved = [p.resolve() for p in paths]

    def name(p: Path, depth: int) -> str:
        base = p.stem if p.suffix == ".jsonl" else p.name
        parents = [q.name for q in list(p.parents)[:depth] if q.name]
        return "/".join([*reversed(parents), base])

    for depth in range(0, 8):
        names = [name(p, depth) for p in resolved]
        if len(set(names)) == len(names):
            return names
    return [f"{name(p, 0)}#{i + 1}" for i, p in enumerate(resolved)]
