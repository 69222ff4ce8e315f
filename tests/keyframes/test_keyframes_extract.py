"""End-to-end keyframe extraction on synthetic videos with known scenes (real PyAV I/O)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffcap.config import KeyframeConfig
from diffcap.keyframes import KeyframeSet, KeyframesSkipped, extract_keyframes
from diffcap.video.synth import Scene, SynthVideo, vfr_times, write_video

NTSC = Fraction(30000, 1001)


@pytest.fixture(scope="module")
def scenes_video(tmp_path_factory: pytest.TempPathFactory) -> SynthVideo:
    """Four static-camera shots (a small square moves in each), 21 s at 29.97 fps."""
    path = tmp_path_factory.mktemp("kf") / "scenes.mp4"
    return write_video(
        path, [Scene(5.0), Scene(6.0), Scene(3.0), Scene(7.0)], size=(320, 180), fps=NTSC
    )


@pytest.fixture(scope="module")
def fade_video(tmp_path_factory: pytest.TempPathFactory) -> SynthVideo:
    """Fades in from black over 1.5 s, a cut, fades out to black."""
    path = tmp_path_factory.mktemp("kf") / "fade.mp4"
    return write_video(
        path, [Scene(4.0, fade_in=1.5), Scene(5.0, fade_out=2.0)], size=(160, 90), fps=25
    )


def _scene_of(truth: SynthVideo, t: float) -> int:
    return int(np.searchsorted(truth.scene_starts, t + 1e-9, side="right")) - 1


def _assert_true_times(kset: KeyframeSet, truth: SynthVideo) -> None:
    frame_times = np.array([float(t) for t in truth.frame_times])
    times = kset.times
    assert times == sorted(set(times)), "strictly increasing"
    for t in times:
        assert np.abs(frame_times - t).min() < 1e-6, f"{t} is not a real frame time"


def test_one_keyframe_per_scene_static_adds_none(scenes_video: SynthVideo) -> None:
    kset = extract_keyframes(scenes_video.path, KeyframeConfig())
    _assert_true_times(kset, scenes_video)
    scenes = [_scene_of(scenes_video, t) for t in kset.times]
    # every scene longer than one interval gets a keyframe; the static shots add nothing
    # more, except the paper's last-frame rule at the very end
    assert scenes[:-1] == [0, 1, 2, 3]
    assert scenes[-1] == 3 and kset.times[-1] == pytest.approx(
        float(scenes_video.frame_times[-1]), abs=1e-6
    )
    assert kset.keyframes[0].time == 0.0 and kset.keyframes[0].pts == 0
    frame = float(1 / NTSC)
    starts = set(scenes_video.scene_starts)
    for t in kset.times[:-1]:
        # sampled every 2 s by PTS (the first frame at/after k*2), or a cut candidate: the
        # first frame of a scene
        target = round(t / 2) * 2
        assert target - 1e-6 <= t < target + frame + 1e-6 or t in starts
    assert kset.embedder == "weightless-v1" and kset.threshold == 0.85


def test_json_layout_files_and_sorting(scenes_video: SynthVideo, tmp_path: Path) -> None:
    kset = extract_keyframes(scenes_video.path, KeyframeConfig(), out_dir=tmp_path, video_id="vid")
    json_path = tmp_path / "vid" / "keyframes.json"
    assert kset.json_path == json_path and kset.images is None
    d = json.loads(json_path.read_text())
    for key in (
        "video_id",
        "video_path",
        "duration",
        "width",
        "height",
        "fps",
        "embedder",
        "interval",
        "threshold",
        "keyframes",
    ):
        assert key in d
    assert (d["video_id"], d["width"], d["height"], d["interval"]) == ("vid", 320, 180, 2.0)
    assert d["fps"] == pytest.approx(29.97, abs=1e-3)
    assert d["duration"] == pytest.approx(scenes_video.duration, abs=0.05)
    files = [k["file"] for k in d["keyframes"]]
    assert [k["idx"] for k in d["keyframes"]] == list(range(len(files)))
    assert sorted(files) == files
    assert sorted(p.name for p in (tmp_path / "vid").glob("kf_*.jpg")) == files
    for k in d["keyframes"]:
        assert (json_path.parent / k["file"]).is_file()
        assert f"{k['time']:010.3f}" in k["file"]
    loaded = KeyframeSet.load(json_path)
    assert loaded.times == pytest.approx(kset.times) and loaded.info.fps == NTSC
    assert loaded.image_path(loaded.keyframes[0]) == json_path.parent / files[0]

    # a rerun with other settings replaces the folder's keyframes instead of mixing them
    extract_keyframes(
        scenes_video.path,
        KeyframeConfig(max_keyframes=2, image_format="png"),
        out_dir=tmp_path,
        video_id="vid",
    )
    assert len(list((tmp_path / "vid").glob("kf_*"))) == 2
    assert not list((tmp_path / "vid").glob(".kf_*"))


def test_in_memory_images_and_png_max_side(scenes_video: SynthVideo, tmp_path: Path) -> None:
    kset = extract_keyframes(scenes_video.path, KeyframeConfig(max_side=100))
    assert kset.json_path is None and len(kset.images) == len(kset.keyframes)
    assert all(k.file is None for k in kset.keyframes)
    assert {im.shape for im in kset.images} == {(56, 100, 3)}
    out = extract_keyframes(
        scenes_video.path, KeyframeConfig(image_format="png", max_side=4096), out_dir=tmp_path
    )
    first = out.image_path(out.keyframes[0])
    assert first.suffix == ".png"
    assert Image.open(first).size == (320, 180)  # never upscaled


def test_budget_keeps_frame0_and_most_novel(scenes_video: SynthVideo) -> None:
    full = extract_keyframes(scenes_video.path, KeyframeConfig())
    sims = full.extra["similarities"]
    budget = extract_keyframes(scenes_video.path, KeyframeConfig(max_keyframes=3))
    assert len(budget.keyframes) == 3 and budget.times[0] == 0.0
    order = sorted(range(1, len(sims)), key=lambda i: (sims[i], i))[:2]
    assert budget.times[1:] == [full.times[i] for i in sorted(order)]
    assert budget.max_keyframes == 3


def test_window_times_stay_relative_to_video_start(scenes_video: SynthVideo) -> None:
    kset = extract_keyframes(scenes_video.path, KeyframeConfig(start=5.5, end=14.0))
    _assert_true_times(kset, scenes_video)
    assert kset.times[0] == pytest.approx(5.5, abs=0.034)
    assert all(5.5 <= t < 14.0 for t in kset.times)
    assert [_scene_of(scenes_video, t) for t in kset.times] == [1, 2, 2]
    # the last frame before the window's end (frame 419 at 13.98 s), >= 2 s after 11.51 s
    assert kset.times[-1] == pytest.approx(float(419 / NTSC), abs=1e-6)
    assert kset.window == (5.5, 14.0) and not kset.truncated


def test_max_seconds_and_empty_window(scenes_video: SynthVideo) -> None:
    # dropping too-short videos is the filter's job now (filter.min_duration, prepare stage)
    with pytest.raises(ValueError, match=r"moved to filter\.min_duration"):
        KeyframeConfig(min_duration=30)
    kset = extract_keyframes(scenes_video.path, KeyframeConfig(max_seconds=12.0))
    assert kset.truncated and kset.window == (0.0, 12.0)
    assert max(kset.times) < 12.0
    with pytest.raises(KeyframesSkipped) as info:
        extract_keyframes(scenes_video.path, KeyframeConfig(start=50.0))
    assert info.value.reason == "empty_window"


def test_fade_in_skips_black_and_fades_keep_scenes(fade_video: SynthVideo) -> None:
    kset = extract_keyframes(fade_video.path, KeyframeConfig())
    _assert_true_times(kset, fade_video)
    assert kset.extra["solid_skipped"] >= 1
    assert 0.0 < kset.times[0] < 1.0  # first non-solid probe inside the first interval
    assert {_scene_of(fade_video, t) for t in kset.times} == {0, 1}
    assert len(kset.keyframes) <= 5
    plain = extract_keyframes(fade_video.path, KeyframeConfig(skip_solid=False))
    assert plain.times[0] == 0.0


def test_interval_and_threshold_settings(scenes_video: SynthVideo) -> None:
    dense = extract_keyframes(scenes_video.path, KeyframeConfig(interval=0.5))
    assert [_scene_of(scenes_video, t) for t in dense.times[:-1]] == [0, 1, 2, 3]
    for start in scenes_video.scene_starts:  # each cut found within one interval
        assert any(start - 1e-6 <= t < start + 0.5 + 0.04 for t in dense.times)
    # above any cosine similarity: keep every candidate (the config accepts [-1, 1] only,
    # so the selection rule is driven directly here)
    keep_all = KeyframeConfig(cut_candidates=False).model_copy(update={"threshold": 1.01})
    every = extract_keyframes(scenes_video.path, keep_all)
    assert len(every.keyframes) == len(every.extra["similarities"]) == 11  # 0,2,...,20 s
    assert every.extra["candidates"] == 11
    # with cut candidates: the 3 scene starts off the 2 s grid come on top
    more = extract_keyframes(
        scenes_video.path, KeyframeConfig().model_copy(update={"threshold": 1.01})
    )
    assert more.extra["cut_candidates"] == pytest.approx(scenes_video.scene_starts[1:])
    assert set(more.times) == set(every.times) | set(more.extra["cut_candidates"])


def test_variable_frame_rate_times_are_real(tmp_path: Path) -> None:
    truth = write_video(
        tmp_path / "vfr.mp4", [Scene(3.0), Scene(3.0)], size=(160, 90), frame_times=vfr_times(6.0)
    )
    kset = extract_keyframes(truth.path, KeyframeConfig(interval=1.0))
    _assert_true_times(kset, truth)
    assert {_scene_of(truth, t) for t in kset.times} == {0, 1}


def test_bad_inputs_raise_typed_errors(tmp_path: Path) -> None:
    from diffcap.errors import VideoError

    (tmp_path / "bad.mp4").write_bytes(b"not a video at all")
    with pytest.raises(VideoError):
        extract_keyframes(tmp_path / "bad.mp4", KeyframeConfig())
    with pytest.raises(VideoError):
        extract_keyframes(tmp_path / "missing.mp4", KeyframeConfig())
