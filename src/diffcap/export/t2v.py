"""Text-to-video training records, as Open-Sora-Plan's data files hold them (a JSON list).

One entry per video (or per clip span when the record has one)::

    {"path": "videos/a.mp4", "cap": ["<dense caption>"], "start": 0.0, "end": 10.0,
     "num_frames": 300, "fps": 30.0, "height": 720, "width": 1280,
     "resolution": {"height": 720, "width": 1280}, "frame_idx": "0:300"}

``num_frames``, ``fps`` and the size come from probing the video file; ``start``/``end`` are
the part of the video the caption describes (the record's ``span``, else its summary's
start/end, else the whole video; see :func:`~diffcap.export.records.record_span`) and
``num_frames`` and ``frame_idx`` cover it. Records with measured camera motion (see
docs/camera.md) add ``"camera": [{"start", "end", "label", "magnitude"}]`` per keyframe
interval inside the span. A record whose video is missing or unreadable is
skipped (counted in the summary line) and the others are still written. ``path`` is
relative to the output file's folder (or absolute with ``--absolute-paths``).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from diffcap.errors import DiffcapError
from diffcap.export.base import ExportOptions, ExportResult, summarized
from diffcap.export.records import (
    RecordSource,
    clamp_window,
    record_span,
    relative_to_output,
    resolve_video,
)
from diffcap.fsutil import atomic_open
from diffcap.timeline import VideoInfo, VideoRecord
from diffcap.video import probe

__all__ = ["t2v_row", "write_t2v"]


def t2v_row(rec: VideoRecord, video: Path, info: VideoInfo, path: str) -> dict[str, Any] | None:
    summary = rec.summary
    if summary is None:
        return None
    start, end = clamp_window(record_span(rec), info.duration, rec.video_id)
    fps = info.fps_float or (info.frame_count / info.duration if info.frame_count else None)
    first = round(start * fps) if fps else 0
    last = round(end * fps) if fps else 0
    if info.frame_count:
        last = min(last, info.frame_count)
    return {
        "path": path,
        "cap": [summary.content],
        "start": round(start, 6),
        "end": round(end, 6),
        "num_frames": last - first,
        "fps": round(fps, 6) if fps else None,
        "height": info.height,
        "width": info.width,
        "resolution": {"height": info.height, "width": info.width},
        "frame_idx": f"{first}:{last}",
        "video_id": rec.video_id,
        **_camera(rec, start, end),
    }


def _camera(rec: VideoRecord, start: float, end: float) -> dict[str, Any]:
    """``{"camera": [{start, end, label, magnitude}]}``: the measured camera motion of the
    keyframe intervals inside ``[start, end]`` (camera-control conditioning); nothing when
    the record has none."""
    kfs = rec.keyframes
    moves = [
        {
            "start": round(a.time, 6),
            "end": round(b.time, 6),
            "label": b.camera.label,
            "magnitude": b.camera.magnitude,
        }
        for a, b in itertools.pairwise(kfs)
        if b.camera is not None and a.time >= start - 1e-6 and b.time <= end + 1e-6
    ]
    return {"camera": moves} if moves else {}


def write_t2v(source: RecordSource, out: Path, opts: ExportOptions) -> ExportResult:
    result = ExportResult("t2v", out)
    rows = []
    for rec in summarized(source, result, opts):
        try:
            video = resolve_video(rec, source.base_dir)
            rel = relative_to_output(video, out.parent, opts.absolute_paths)
            row = t2v_row(rec, video, probe(video), rel)
        except DiffcapError as exc:  # one bad video never costs the others their output
            result.fail(rec.video_id, exc)
            continue
        if row is not None:
            rows.append(row)
    with atomic_open(out) as fh:
        json.dump(rows, fh, ensure_ascii=False, indent=1)
    result.items = len(rows)
    return result
