"""Grid and t2v exports of manifest spans, records skipped for a missing video, and llava's
notes for requested tasks that yield no sample."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffcap.export import ExportOptions, export
from diffcap.export.grid import grid_times
from diffcap.timeline import Caption, VideoRecord
from diffcap.video import open_video

QUIET = ExportOptions(progress=False)


def _with(
    rec: VideoRecord,
    *,
    summary: tuple[float | None, float | None] = (0.0, 10.0),
    span: dict | None = None,
    video_id: str | None = None,
    video_path: str | None = None,
) -> VideoRecord:
    caps = [c for c in rec.captions if c.idx != "-1"]
    caps.append(Caption("-1", f"{rec.video_id} summary", start=summary[0], end=summary[1]))
    extra = {k: v for k, v in rec.extra.items() if k != "span"}
    if span is not None:
        extra["span"] = span
    return replace(
        rec,
        video_id=video_id or rec.video_id,
        video_path=video_path or rec.video_path,
        captions=caps,
        extra=extra,
    )


def _write(path: Path, recs: list[VideoRecord]) -> Path:
    path.write_text("".join(json.dumps(r.to_json()) + "\n" for r in recs))
    return path


def test_grid_samples_the_manifest_span(export_fixture, tmp_path):
    alpha = export_fixture.records[0]
    # span 2-6 s of the 10 s video; the summary as a run writes it (its window = the span)
    src = _write(
        tmp_path / "r.jsonl", [_with(alpha, summary=(2.0, 6.0), span={"start": 2.0, "end": 6.0})]
    )
    out = tmp_path / "grid.json"
    res = export(src, "grid", out, QUIET)
    (item,) = json.loads(out.read_text())
    assert res.items == 1
    expected = grid_times(6.0, 16, 2.0)
    assert expected[0] == pytest.approx(2.125) and expected[-1] == pytest.approx(5.875)
    assert item["frame_times"] == pytest.approx(expected, abs=0.041)  # 25 fps: next frame
    assert all(2.0 <= t <= 6.0 for t in item["frame_times"])
    # the cells really show the span's frames, not the whole video's
    grid = np.asarray(Image.open(out.parent / item["image"]).convert("RGB")).astype(int)
    with open_video(export_fixture.videos["alpha"]) as v:
        frames = [f.image.astype(int) for f in v.frames_at(expected)]
    w, h = 160, 90
    for i in (0, 15):
        r, c = divmod(i, 4)
        cell = grid[r * (h + 50) : r * (h + 50) + h, c * (w + 50) : c * (w + 50) + w]
        assert np.abs(cell - frames[i]).mean() < 8


def test_span_key_wins_over_summary_and_summary_window_is_used_without_span(
    export_fixture, tmp_path
):
    alpha = export_fixture.records[0]
    recs = [
        # a span with a summary that claims the whole video: the span decides
        _with(alpha, video_id="span", summary=(0.0, 10.0), span={"start": 4.0, "end": 8.0}),
        # no span, a keyframe window (--start 1 --end 5) on the summary
        _with(alpha, video_id="window", summary=(1.0, 5.0)),
        # neither: the whole video
        _with(alpha, video_id="whole", summary=(None, None)),
    ]
    out = tmp_path / "grid.json"
    export(_write(tmp_path / "r.jsonl", recs), "grid", out, QUIET)
    times = {i["id"]: i["frame_times"] for i in json.loads(out.read_text())}
    duration = export_fixture.synth["alpha"].duration
    assert times["span"] == pytest.approx(grid_times(8.0, 16, 4.0), abs=0.041)
    assert times["window"] == pytest.approx(grid_times(5.0, 16, 1.0), abs=0.041)
    assert times["whole"] == pytest.approx(grid_times(duration), abs=0.041)


def test_t2v_covers_the_span(export_fixture, tmp_path):
    alpha = export_fixture.records[0]
    # the span alone decides, even where the summary has no window of its own
    rec = _with(alpha, summary=(None, None), span={"start": 2.0, "end": 6.0})
    out = tmp_path / "t2v.json"
    export(_write(tmp_path / "r.jsonl", [rec]), "t2v", out, QUIET)
    (row,) = json.loads(out.read_text())
    assert (row["start"], row["end"]) == (2.0, 6.0)
    assert row["num_frames"] == 100 and row["frame_idx"] == "50:150"  # 25 fps


def test_span_past_the_end_is_clamped(export_fixture, tmp_path):
    alpha = export_fixture.records[0]
    rec = _with(alpha, summary=(8.0, 30.0), span={"start": 8.0, "end": 30.0})
    out = tmp_path / "t2v.json"
    export(_write(tmp_path / "r.jsonl", [rec]), "t2v", out, QUIET)
    (row,) = json.loads(out.read_text())
    duration = export_fixture.synth["alpha"].duration
    assert row["end"] == pytest.approx(duration) and row["start"] == 8.0


@pytest.mark.parametrize("fmt", ["grid", "t2v"])
def test_missing_video_is_skipped_and_the_rest_written(export_fixture, tmp_path, fmt):
    alpha, beta = export_fixture.records
    recs = [alpha, _with(alpha, video_id="ghost", video_path=str(tmp_path / "gone.mp4")), beta]
    out = tmp_path / f"{fmt}.json"
    res = export(_write(tmp_path / "r.jsonl", recs), fmt, out, QUIET)
    rows = json.loads(out.read_text())
    assert [r["video_id"] for r in rows] == ["alpha", "beta"]
    assert res.records == 3 and res.items == 2
    assert res.skipped == {"video not found": 1}
    assert "gone.mp4" in res.failed["ghost"]
    assert "skipped 1 video not found" in res.line()
    assert not res.nothing_exported


def test_unreadable_video_is_skipped(export_fixture, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    alpha = export_fixture.records[0]
    recs = [_with(alpha, video_id="bad", video_path=str(bad)), alpha]
    res = export(_write(tmp_path / "r.jsonl", recs), "grid", tmp_path / "g.json", QUIET)
    assert res.items == 1 and list(res.failed) == ["bad"]
    assert next(iter(res.skipped)).startswith("unreadable video")


def test_llava_clips_key_and_zero_task_notes(export_fixture, tmp_path):
    beta = export_fixture.records[1]  # fast record: no differential captions, no short caption
    out = tmp_path / "l.json"
    res = export(export_fixture.records_file, "llava", out, QUIET)
    assert res.notes == []  # every task yields samples from alpha
    # beta alone: slide, clip and recaption have nothing to show, and say so
    src = _write(export_fixture.root / "beta_only.jsonl", [beta])
    res = export(src, "llava", out, QUIET)
    assert res.extra["tasks"] == {"fast": 1, "slide": 0, "clip": 0, "recaption": 0}
    line = res.line()
    assert "clip: 0 samples" in line and "--clip-captions FILE" in line
    assert "--format clips" in line and "recaption: 0 samples" in line
    assert "slide: 0 samples" in line and "fast: 0" not in line
    # clip captions in the record's `clips` key are used (one the record cannot explain, a
    # window without differential captions, is left out instead of failing the export)
    alpha = export_fixture.records[0]
    clips = [
        {"start": 0.0, "end": 4.0, "content": "gamma clip"},
        {"start": 7.0, "end": 9.0, "content": "no captions in here"},
    ]
    clipped = replace(alpha, video_id="gamma", extra={"clips": clips})
    src = _write(export_fixture.root / "gamma_clips.jsonl", [clipped])
    res = export(src, "llava", out, ExportOptions(progress=False, tasks=("clip",)))
    (item,) = json.loads(out.read_text())
    assert item["conversations"][1]["value"] == "gamma clip" and res.notes == []
    assert "alpha caption 2" in item["conversations"][0]["value"]
