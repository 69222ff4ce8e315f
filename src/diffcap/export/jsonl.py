"""JSONL exports: all records of a run in one file, and the ShareGPT4Video 40K shape.

``--format jsonl`` writes ``VideoRecord.to_json()`` lines with keyframe paths rewritten
relative to the output file's folder (or absolute). ``--format sharegpt4video`` writes the
released dataset's shape::

    {"video_id": ..., "video_path": ..., "zip_folder": ...,
     "captions": [{"idx": "0", "content": ...}, ..., {"idx": "-1", "content": summary}],
     "timestamps": [0.0, 2.0, ...], "keyframes": ["kf/...jpg", ...]}

``timestamps[i]`` is the time of ``captions[i]`` (real PTS times, seconds); records without a
summary are skipped (the 40K file always ends with idx "-1").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from diffcap.export.base import ExportOptions, ExportResult, progress_bar
from diffcap.export.records import RecordSource
from diffcap.fsutil import atomic_open
from diffcap.io.records import record_for_output, relative_to_output
from diffcap.timeline import VideoRecord

__all__ = ["record_for_output", "sharegpt4video_row", "write_jsonl", "write_sharegpt4video"]


def write_jsonl(source: RecordSource, out: Path, opts: ExportOptions) -> ExportResult:
    result = ExportResult("jsonl", out)
    with atomic_open(out) as fh, progress_bar(opts, "jsonl") as bar:
        for rec in source:
            row = record_for_output(rec, out.parent, opts.absolute_paths)
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            result.records += 1
            result.items += 1
            bar.update()
    return result


def sharegpt4video_row(rec: VideoRecord, out_dir: Path, absolute: bool) -> dict[str, Any] | None:
    """The 40K dataset's record for ``rec``; None when it has no summary."""
    summary = rec.summary
    if summary is None:
        return None
    diffs = rec.differential
    files = {str(k.idx): k.file for k in rec.keyframes}
    extra = rec.extra or {}
    return {
        "video_id": rec.video_id,
        "video_path": rec.video_path,
        # The 40K release names the zip archive a video is stored in; ours: the video's folder.
        "zip_folder": extra.get("zip_folder") or Path(rec.video_path).parent.name,
        "captions": [{"idx": c.idx, "content": c.content} for c in diffs]
        + [{"idx": "-1", "content": summary.content}],
        "timestamps": [c.time for c in diffs] + [None],
        "keyframes": [
            relative_to_output(file, out_dir, absolute) if (file := files.get(c.idx)) else None
            for c in diffs
        ],
        "span": [summary.start, summary.end],
    }


def write_sharegpt4video(source: RecordSource, out: Path, opts: ExportOptions) -> ExportResult:
    result = ExportResult("sharegpt4video", out)
    with atomic_open(out) as fh, progress_bar(opts, "sharegpt4video") as bar:
        for rec in source:
            result.records += 1
            bar.update()
            row = sharegpt4video_row(rec, out.parent, opts.absolute_paths)
            if row is None:
                result.skip("without a summary")
                continue
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            result.items += 1
    return result
