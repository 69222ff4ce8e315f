"""The synthetic videos are deterministic, their scenes distinct, their ground truth right."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from diffcap.video import open_video, probe
from diffcap.video.synth import (
    LAYOUTS,
    Scene,
    default_scenes,
    sample_video,
    vfr_times,
    write_video,
)


def _decode(path: Path) -> list[np.ndarray]:
    with open_video(path) as src:
        return [f.image for f in src.frames()]


def test_same_arguments_same_pixels(tmp_path: Path) -> None:
    a = write_video(tmp_path / "a.mp4", default_scenes(3, 1.5), size=(64, 48), fps=10)
    b = write_video(tmp_path / "b.mp4", default_scenes(3, 1.5), size=(64, 48), fps=10)
    assert a.frame_times == b.frame_times and a.scene_starts == b.scene_starts
    assert all(np.array_equal(x, y) for x, y in zip(_decode(a.path), _decode(b.path), strict=True))


def test_scenes_are_distinct_and_frames_move(tmp_path: Path) -> None:
    truth = write_video(tmp_path / "s.mp4", default_scenes(6, 6.0), size=(96, 64), fps=10)
    assert truth.scene_starts == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    mids = [truth.image_at(s + 0.5).astype(np.int16) for s in truth.scene_starts]
    for i in range(len(mids)):
        for j in range(i + 1, len(mids)):
            assert np.abs(mids[i] - mids[j]).mean() > 30, (i, j)  # different hue and layout
    a, b = truth.image_at(2.1), truth.image_at(2.6)  # same scene, the square has moved
    assert 0 < np.abs(a.astype(np.int16) - b).mean() < 30
    assert truth.scene_at(2.5) == 2


def test_fades_go_to_black() -> None:
    from diffcap.video.synth import SynthVideo

    truth = SynthVideo(
        Path("x"),
        "h264",
        (64, 48),
        Fraction(10),
        "yuv420p",
        0,
        [],
        [],
        scenes=[Scene(2.0, fade_in=0.5, fade_out=0.5, moving=False)],
    )
    assert truth.image_at(0.0).max() == 0
    assert truth.image_at(1.0).mean() > 50
    assert truth.image_at(1.9999).max() < 5


def test_every_layout_renders(tmp_path: Path) -> None:
    scenes = [Scene(0.2, layout=name) for name in LAYOUTS]
    truth = write_video(tmp_path / "l.mkv", scenes, size=(64, 48), fps=10)
    assert len(truth.scene_starts) == len(LAYOUTS)
    with pytest.raises(ValueError, match="layout"):
        write_video(tmp_path / "bad.mp4", [Scene(0.2, layout="plaid")])


def test_vfr_times_and_ground_truth(tmp_path: Path) -> None:
    times = vfr_times(1.0)
    assert times[:5] == [0, Fraction(1, 30), Fraction(2, 30), Fraction(1, 6), Fraction(11, 60)]
    truth = write_video(tmp_path / "v.mp4", [Scene(0.5), Scene(0.5)], frame_times=times)
    assert truth.fps is None and truth.frame_times == times
    assert truth.scene_starts == [0.0, float(next(t for t in times if t >= Fraction(1, 2)))]


def test_sample_video_has_audio_and_five_scenes(tmp_path: Path) -> None:
    truth = sample_video(tmp_path / "demo.mp4", duration=5.0, size=(160, 90), fps=10)
    info = probe(truth.path)
    assert info.has_audio and info.duration == pytest.approx(5.0, abs=0.01)
    assert len(truth.scene_starts) == 5


def test_unknown_codec_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="codec"):
        write_video(tmp_path / "x.mp4", [Scene(0.2)], codec="prores9000")
