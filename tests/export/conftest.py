"""Fixture records for export tests: real small videos, real JPEG keyframes decoded from
them, and records in both layouts (a ``diffcap caption`` JSONL and a run directory)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from diffcap.timeline import Caption, Keyframe, VideoRecord
from diffcap.video import open_video
from diffcap.video.synth import write_video

KF_TIMES = [0.0, 2.0, 4.0, 6.0]


@dataclass
class Fixture:
    root: Path
    records_file: Path  # captions.jsonl (keyframes in captions.keyframes/)
    run_dir: Path  # RUN_DIR with run.sqlite + records/records-00000.jsonl
    videos: dict[str, Path]
    records: list[VideoRecord]
    synth: dict[str, Any]  # video id -> diffcap.video.synth.SynthVideo (ground truth)


def _record(vid: str, video: Path, files: list[str], *, slide: bool = True) -> VideoRecord:
    kfs = [Keyframe(i, t, -1, f) for i, (t, f) in enumerate(zip(KF_TIMES, files, strict=True))]
    caps = []
    if slide:
        caps = [
            Caption(str(i), f"{vid} caption {i} at {t:g} s", time=t) for i, t in enumerate(KF_TIMES)
        ]
    caps.append(Caption("-1", f"{vid} summary: the whole video", start=0.0, end=10.0))
    return VideoRecord(
        vid, str(video), 10.0, kfs, caps, "slide" if slide else "fast", provenance={"model": "m"}
    )


def _write_keyframes(video: Path, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    with open_video(video) as src:
        for i, frame in enumerate(src.frames_at(KF_TIMES)):
            path = folder / f"{i:04d}_{frame.time:08.3f}.jpg"
            Image.fromarray(frame.image).save(path, quality=90)
            out.append(path)
    return out


@pytest.fixture(scope="session")
def export_fixture(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    from diffcap.store import RunStore
    from diffcap.store.db import VideoEntry

    root = tmp_path_factory.mktemp("export")
    (root / "videos").mkdir()
    synth = {
        "alpha": write_video(root / "videos" / "alpha.mp4", size=(160, 90), fps=25),
        "beta": write_video(root / "videos" / "beta.mp4", size=(128, 96), fps=30),
    }
    videos = {vid: s.path for vid, s in synth.items()}
    records, run_records = [], []
    run_dir = root / "run"
    for n, (vid, video) in enumerate(videos.items()):
        kf = _write_keyframes(video, root / "captions.keyframes" / vid)
        rec = _record(vid, video, [str(p.relative_to(root)) for p in kf], slide=n == 0)
        if vid == "alpha":
            rec.extra["short_caption"] = "a short prompt about alpha"
            rec.extra["clip_captions"] = [{"start": 0.0, "end": 4.0, "content": "alpha clip"}]
        records.append(rec)
        run_kf = _write_keyframes(video, run_dir / "keyframes" / vid)
        rel = [str(Path("..") / p.relative_to(run_dir)) for p in run_kf]
        run_records.append(_record(vid, video, rel, slide=True))
    records_file = root / "captions.jsonl"
    records_file.write_text("".join(json.dumps(r.to_json()) + "\n" for r in records))
    (run_dir / "records").mkdir(parents=True, exist_ok=True)
    (run_dir / "records" / "records-00000.jsonl").write_text(
        "".join(json.dumps(r.to_json()) + "\n" for r in run_records)
    )
    store = RunStore.open(run_dir / "run.sqlite")
    store.add_videos([VideoEntry(r.video_id, r.video_path) for r in run_records])
    for r in run_records:
        store.complete(r.video_id, r.to_json())
    store.close()
    return Fixture(root, records_file, run_dir, videos, records, synth)
