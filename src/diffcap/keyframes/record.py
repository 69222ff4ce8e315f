"""A keyframe set as a record: the :class:`~diffcap.timeline.VideoRecord` every run writes,
with or without captions (a keyframes-only run builds it here without loading captioning).

    record = build_record(kset, [], "keyframes", Usage(), {}, records_dir)
    record.keyframes[0].file        # "../keyframes/clip/kf_0000_000000.000.jpg"
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from diffcap.keyframes.kset import KeyframeSet
from diffcap.timeline import Caption, Keyframe, Usage, VideoRecord


def record_keyframes(kset: KeyframeSet, records_dir: Path | None) -> list[Keyframe]:
    """Keyframes with ``file`` relative to ``records_dir`` (absolute when it is None)."""
    base = kset.json_path.parent if kset.json_path is not None else None
    out = []
    for kf in kset.keyframes:
        file = kf.file
        if file and base is not None:
            target = os.path.abspath(base / file)  # no symlink lookups: cheap per keyframe
            file = (
                Path(os.path.relpath(target, os.path.abspath(records_dir))).as_posix()
                if records_dir is not None
                else str(target)
            )
        out.append(Keyframe(idx=kf.idx, time=kf.time, pts=kf.pts, file=file, camera=kf.camera))
    return out


def build_record(
    kset: KeyframeSet,
    captions: list[Caption],
    mode: str,
    usage: Usage,
    prov: dict[str, Any],
    records_dir: Path | None,
    extra: dict[str, Any] | None = None,
) -> VideoRecord:
    """The record of one video: its keyframes (files relative to ``records_dir``), the
    captions, and how they were made."""
    return VideoRecord(
        video_id=kset.video_id,
        video_path=str(kset.video_path),
        duration=float(kset.info.duration),
        keyframes=record_keyframes(kset, records_dir),
        captions=captions,
        mode=mode,
        provenance=prov,
        usage=usage,
        extra=extra or {},
    )


__all__ = ["build_record", "record_keyframes"]
