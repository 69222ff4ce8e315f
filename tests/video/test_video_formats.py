"""Codecs, odd sizes, 10-bit and rotated videos all come out as upright RGB uint8."""

from __future__ import annotations

import numpy as np
import pytest

from diffcap.video import open_video, probe
from diffcap.video.synth import Scene
from support.videos import (
    ffmpeg_decode_rgb,
    ffmpeg_rotate,
    requires_ffmpeg,
)


def _mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def _check_all_frames(truth, tol: float = 25.0) -> None:
    with open_video(truth.path) as src:
        frames = list(src.frames())
    w, h = truth.size
    assert len(frames) == truth.frame_count
    for f in frames:
        assert f.image.shape == (h, w, 3) and f.image.dtype == np.uint8
        assert f.image.flags["C_CONTIGUOUS"]
    for f in frames[::7]:
        assert _mean_diff(f.image, truth.image_at(f.time)) < tol, f"frame at {f.time}"


@pytest.mark.parametrize(
    ("codec", "suffix", "name"),
    [
        ("hevc", ".mp4", "hevc"),
        ("vp9", ".webm", "vp9"),
        ("av1", ".mkv", "av1"),
        ("mpeg4", ".avi", "mpeg4"),
        ("h264", ".mov", "h264"),
    ],
)
def test_codecs_decode_with_true_content(video_factory, codec, suffix, name) -> None:
    truth = video_factory(f"codec-{codec}", suffix=suffix, codec=codec)
    info = probe(truth.path)
    assert info.codec == name
    assert (info.width, info.height) == truth.size
    assert info.duration == pytest.approx(3.0, abs=0.11)
    assert info.frame_count == pytest.approx(truth.frame_count, abs=1)
    _check_all_frames(truth)


@pytest.mark.parametrize(
    ("codec", "suffix", "pix_fmt"), [("vp9", ".webm", "yuv420p"), ("h264", ".mp4", "yuv444p")]
)
def test_odd_sizes(video_factory, codec, suffix, pix_fmt) -> None:
    truth = video_factory(
        "odd",
        [Scene(0.5), Scene(0.5)],
        suffix=suffix,
        codec=codec,
        size=(321, 241),
        pix_fmt=pix_fmt,
    )
    info = probe(truth.path)
    assert (info.width, info.height) == (321, 241)
    _check_all_frames(truth)


@pytest.mark.parametrize(("codec", "suffix"), [("h264", ".mp4"), ("hevc", ".mkv")])
def test_ten_bit_becomes_8_bit_rgb(video_factory, codec, suffix) -> None:
    truth = video_factory("10bit", suffix=suffix, codec=codec, pix_fmt="yuv420p10le")
    info = probe(truth.path)
    assert info.pix_fmt == "yuv420p10le" and info.bit_depth == 10
    _check_all_frames(truth)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotated_frames_come_out_upright(video_factory, rotation: int) -> None:
    # Displayed as a portrait 64x96 (90/270) or landscape 96x64 (180).
    size = (64, 96) if rotation % 180 else (96, 64)
    truth = video_factory("rot", size=size, rotation=rotation)
    info = probe(truth.path)
    assert info.rotation == rotation
    assert (info.width, info.height) == size
    _check_all_frames(truth)


@requires_ffmpeg
@pytest.mark.parametrize("degrees", [90, 270])
def test_phone_style_rotation_matches_ffmpeg(video_factory, tmp_path, degrees: int) -> None:
    """A rotation tag written by the ffmpeg CLI (as phones do): we show what ffmpeg shows."""
    plain = video_factory("plain-for-rotation", pix_fmt="yuv444p")
    rotated = ffmpeg_rotate(plain.path, tmp_path / f"rot{degrees}.mp4", degrees)
    info = probe(rotated)
    assert info.rotation in (90, 270)
    assert (info.width, info.height) == (64, 96)  # displayed portrait
    reference = ffmpeg_decode_rgb(rotated, info.width, info.height)
    with open_video(rotated) as src:
        first = next(src.frames())
    assert first.image.shape == reference.shape
    assert _mean_diff(first.image, reference) < 3.0  # the same picture, same orientation
    # ... and that picture is the original one turned by the display rotation.
    turned = np.rot90(next(open_video(plain.path).frames()).image, info.rotation // 90)
    assert _mean_diff(first.image, turned) < 1.0


def test_audio_is_reported_and_ignored(video_factory) -> None:
    truth = video_factory("with-audio", audio=True)
    info = probe(truth.path)
    assert info.has_audio is True
    assert probe(video_factory("plain-for-rotation", pix_fmt="yuv444p").path).has_audio is False
    _check_all_frames(truth)


def test_probe_reports_everything(video_factory) -> None:
    truth = video_factory("probe-me", suffix=".mkv", size=(96, 64), fps=25)
    d = probe(truth.path).to_json()
    assert d["container"] == "matroska" and d["codec"] == "h264"
    assert (d["width"], d["height"], d["rotation"]) == (96, 64, 0)
    assert d["fps"] == "25/1" and d["fps_float"] == 25.0
    assert d["duration"] == pytest.approx(3.0, abs=0.05)
    # Matroska does not store a frame count: estimated, unless counted.
    assert (d["frame_count"], d["frame_count_exact"]) == (75, False)
    counted = probe(truth.path, exact_count=True)
    assert (counted.frame_count, counted.frame_count_exact) == (75, True)
    assert d["variable_fps"] is False and d["has_audio"] is False
