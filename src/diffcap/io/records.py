"""Records as files: keyframe paths written for where a records file or an export lives.

Keyframe ``file`` paths in a run's records are relative to ``RUN_DIR/records``;
:func:`absolute_keyframes` resolves them, :func:`record_for_output` writes them relative to
an output's own folder (or absolute).

    rec = absolute_keyframes(VideoRecord.from_json(d), run_dir / "records")
    row = record_for_output(rec, Path("exports"), absolute=False)
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from diffcap.timeline import VideoRecord


def absolute_keyframes(rec: VideoRecord, base_dir: Path) -> VideoRecord:
    kfs = [
        replace(k, file=str((base_dir / k.file).resolve())) if k.file else k for k in rec.keyframes
    ]
    return replace(rec, keyframes=kfs)


def relative_to_output(path: str | os.PathLike[str], out_dir: Path, absolute: bool) -> str:
    """``path`` written for an export in ``out_dir``: relative (portable folder) or absolute."""
    p = Path(path).resolve()
    if absolute:
        return str(p)
    return os.path.relpath(p, out_dir.resolve()).replace(os.sep, "/")


def record_for_output(rec: VideoRecord, out_dir: Path, absolute: bool) -> dict[str, Any]:
    """``rec.to_json()`` with keyframe files written for an export in ``out_dir``."""
    kfs = [
        replace(k, file=relative_to_output(k.file, out_dir, absolute)) if k.file else k
        for k in rec.keyframes
    ]
    return replace(rec, keyframes=kfs).to_json()


def record_for_file(rec: VideoRecord, records_dir: Path, out: Path) -> dict[str, Any]:
    """A run's record (paths relative to ``records_dir``) as a line of the records file
    ``out`` (paths relative to ``out``'s folder)."""
    return record_for_output(absolute_keyframes(rec, records_dir), out.parent, False)
