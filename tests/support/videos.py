"""Synthetic videos for tests: generated once per session, plus damaged-file helpers.

Use the ``video_factory`` fixture (session-scoped). Import it into your area's conftest.py
so pytest sees it (importing it into a test module trips ruff's F811)::

    # tests/<area>/conftest.py
    from support.videos import video_factory  # noqa: F401  (pytest fixture)

    # tests/<area>/test_x.py
    def test_something(video_factory):
        truth = video_factory("ntsc", fps=Fraction(30000, 1001), size=(96, 64))
        truth.path, truth.frame_times, truth.scene_starts   # see diffcap.video.synth.SynthVideo

Without a conftest, build one yourself: ``make = make_video_factory(tmp_path_factory.mktemp("v"))``.

``video_factory(name, scenes=None, suffix=".mp4", **write_video_kwargs)`` writes the video
with :func:`diffcap.video.synth.write_video` the first time a (name, arguments) pair is
asked for and returns the cached :class:`SynthVideo` afterwards. Defaults are small and fast:
3 scenes over 3 s, 96x64, 10 fps, H.264 ultrafast.

Damaged inputs (each writes a new file and returns its path):
``truncate(src, dst, keep=0.5)``, ``corrupt_payload(src, dst, start=0.3, end=0.7)``,
``write_text(dst)``, ``write_png_as(dst)``, ``write_unknown_codec_mkv(src_mkv, dst)``.
FFmpeg CLI helpers (tests skip when ffmpeg is missing): ``HAS_FFMPEG``,
``requires_ffmpeg`` (a skip marker), ``ffmpeg_rotate(src, dst, degrees)``,
``ffmpeg_decode_rgb(path)`` (ffmpeg's own autorotated first frame, for comparisons).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from diffcap.video.synth import Scene, SynthVideo, write_video

FFMPEG = shutil.which("ffmpeg")
HAS_FFMPEG = FFMPEG is not None
requires_ffmpeg = pytest.mark.skipif(not HAS_FFMPEG, reason="needs the ffmpeg CLI on PATH")

DEFAULTS: dict[str, Any] = {"size": (96, 64), "fps": 10}

VideoFactory = Callable[..., SynthVideo]


@pytest.fixture(scope="session")
def video_factory(tmp_path_factory: pytest.TempPathFactory) -> VideoFactory:
    """``make(name, scenes=None, suffix='.mp4', **kwargs) -> SynthVideo``, cached per session."""
    return make_video_factory(tmp_path_factory.mktemp("synth-videos"))


def make_video_factory(root: Path) -> VideoFactory:
    """A caching video maker writing into ``root`` (what the fixture returns)."""
    cache: dict[str, SynthVideo] = {}

    def make(
        name: str, scenes: Sequence[Scene] | None = None, suffix: str = ".mp4", **kwargs: Any
    ) -> SynthVideo:
        args = {**DEFAULTS, **kwargs}
        scenes = list(scenes) if scenes is not None else [Scene(1.0), Scene(1.0), Scene(1.0)]
        key = f"{name}|{suffix}|{scenes!r}|{sorted(args.items())!r}"
        if key not in cache:
            path = root / f"{name}-{len(cache)}{suffix}"
            cache[key] = write_video(path, scenes, **args)
        return cache[key]

    return make


def truncate(src: Path, dst: Path, keep: float = 0.5) -> Path:
    """Copy the first ``keep`` fraction of ``src``'s bytes (an interrupted download)."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * keep)])
    return Path(dst)


def corrupt_payload(
    src: Path, dst: Path, start: float = 0.3, end: float = 0.7, seed: int = 0
) -> Path:
    """Overwrite bytes in [start, end) of the file with random noise (bit rot)."""
    data = bytearray(Path(src).read_bytes())
    a, b = int(len(data) * start), int(len(data) * end)
    data[a:b] = np.random.default_rng(seed).integers(0, 256, b - a, dtype=np.uint8).tobytes()
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def corrupt_after_header(src: Path, dst: Path, seed: int = 0) -> Path:
    """Keep an MP4's header (ftyp + moov) but replace every media byte with noise."""
    data = bytearray(Path(src).read_bytes())
    at = data.find(b"mdat") + 4
    rng = np.random.default_rng(seed)
    data[at:] = rng.integers(0, 256, len(data) - at, dtype=np.uint8).tobytes()
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def write_text(dst: Path) -> Path:
    Path(dst).write_text("this is not a video\n" * 50)
    return Path(dst)


def write_png_as(dst: Path) -> Path:
    """A PNG picture saved under a video name (e.g. ``photo.mp4``)."""
    img = np.zeros((32, 48, 3), np.uint8)
    img[:, :24] = (200, 30, 30)
    Image.fromarray(img).save(dst, format="PNG")
    return Path(dst)


def write_unknown_codec_mkv(src_mkv: Path, dst: Path) -> Path:
    """An H.264 Matroska file whose codec ID is renamed to one no FFmpeg knows."""
    data = Path(src_mkv).read_bytes()
    assert b"V_MPEG4/ISO/AVC" in data, "expects an H.264 .mkv from write_video"
    Path(dst).write_bytes(data.replace(b"V_MPEG4/ISO/AVC", b"V_QQQQQ/ISO/AVC"))
    return Path(dst)


def ffmpeg_rotate(src: Path, dst: Path, degrees: int) -> Path:
    """Stream-copy ``src`` with a display-rotation tag (as phones write), via the ffmpeg CLI."""
    assert FFMPEG, "call only under @requires_ffmpeg"
    base = [FFMPEG, "-nostdin", "-loglevel", "error", "-y"]
    # ffmpeg >= 6 takes -display_rotation (an input option); 5.x honours the rotate tag.
    newer = [*base, "-display_rotation", str(degrees), "-i", str(src), "-c", "copy", str(dst)]
    older = [*base, "-i", str(src), "-c", "copy", "-metadata:s:v:0", f"rotate={degrees}", str(dst)]
    if subprocess.run(newer, capture_output=True, timeout=60).returncode != 0:
        subprocess.run(older, check=True, capture_output=True, timeout=60)
    return Path(dst)


def ffmpeg_decode_rgb(path: Path, width: int, height: int) -> np.ndarray:
    """ffmpeg's first frame of ``path`` (autorotated, as players show it) as RGB uint8.

    ``width``/``height`` are the displayed size; they fix the raw buffer's shape.
    """
    assert FFMPEG, "call only under @requires_ffmpeg"
    cmd = [
        FFMPEG,
        "-nostdin",
        "-loglevel",
        "error",
        "-i",
        str(path),
        "-frames:v",
        "1",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]
    raw = subprocess.run(
        cmd,
        check=True,
        capture_output=True,
        timeout=60,
        env={**os.environ, "AV_LOG_FORCE_NOCOLOR": "1"},
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3)
