"""Measured camera motion in the exports and the viewer's data (see docs/camera.md)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from diffcap.export.parquet import write_parquet
from diffcap.export.t2v import t2v_row
from diffcap.timeline import CameraMotion, Caption, Keyframe, VideoInfo, VideoRecord
from diffcap.web.data import load_run

PAN = CameraMotion("pan_right", "fast", pan=0.61, samples=8)


def record(camera: bool = True) -> VideoRecord:
    kfs = [
        Keyframe(0, 0.0, 0, "a.jpg"),
        Keyframe(1, 2.0, 60, "b.jpg", PAN if camera else None),
        Keyframe(2, 4.0, 120, "c.jpg", CameraMotion("static", None) if camera else None),
    ]
    caps = [Caption(str(i), f"c{i}", time=k.time) for i, k in enumerate(kfs)]
    caps.append(Caption("-1", "summary", start=0.0, end=4.0))
    return VideoRecord("v", "v.mp4", 4.0, kfs, caps, "slide")


def info() -> VideoInfo:
    return VideoInfo("v.mp4", "mp4", "h264", 320, 180, 0, 4.0, 30, 120, True, False, False)


def test_t2v_rows_carry_the_moves_only_when_measured(tmp_path) -> None:
    row = t2v_row(record(), tmp_path / "v.mp4", info(), "v.mp4")
    assert row["camera"] == [
        {"start": 0.0, "end": 2.0, "label": "pan_right", "magnitude": "fast"},
        {"start": 2.0, "end": 4.0, "label": "static", "magnitude": None},
    ]
    assert "camera" not in t2v_row(record(False), tmp_path / "v.mp4", info(), "v.mp4")


def test_parquet_keyframes_have_a_camera_struct(tmp_path) -> None:
    path = tmp_path / "r.parquet"
    write_parquet([record().to_json(), record(False).to_json()], path)
    rows = pq.read_table(path).to_pylist()
    assert rows[0]["keyframes"][0]["camera"] is None
    assert rows[0]["keyframes"][1]["camera"]["label"] == "pan_right"
    assert rows[0]["keyframes"][1]["camera"]["pan"] == 0.61
    assert all(k["camera"] is None for k in rows[1]["keyframes"])


def test_viewer_shows_a_badge_per_measured_interval(tmp_path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps(record().to_json()) + "\n")
    (entry,) = load_run(path).entries
    assert [k.camera for k in entry.keyframes] == [None, "pan right · fast", "static"]
