"""Lazy frames: same answers as frames_at, RGB made only on demand and at the size asked."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from diffcap.keyframes.writer import cap_size
from diffcap.video.lazyframe import LazyFrame, capped_size
from diffcap.video.pyav import PyAVSource
from diffcap.video.synth import Scene

BFRAMES = {"size": (64, 48), "fps": 25, "gop": 25, "options": {"preset": "veryfast", "bf": "3"}}
SCENES = [Scene(4.0), Scene(4.0), Scene(4.0)]


def _mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def _blocks(a: np.ndarray, k: int = 4) -> np.ndarray:
    """k x k block means: swscale places 4:2:0 chroma a little differently when it shrinks,
    which shows only at sharp colour edges."""
    h, w = a.shape[0] // k * k, a.shape[1] // k * k
    return a[:h, :w].reshape(h // k, k, w // k, k, 3).mean(axis=(1, 3))


@pytest.mark.parametrize("rotation", [0, 90])
def test_lazy_frames_match_frames_at(video_factory, rotation: int) -> None:
    if rotation:
        truth = video_factory("rot", size=(64, 96), rotation=rotation)
    else:
        truth = video_factory("bframes", SCENES, **BFRAMES)
    targets = [0.0, 0.0, 0.35, 1.0, 2.9, 5.55, 50.0]
    with PyAVSource(truth.path) as src:
        eager = [(f.timestamp, f.image.tobytes(), f.image.shape) for f in src.frames_at(targets)]
    with PyAVSource(truth.path) as src:
        lazy = list(src.lazy_frames_at(targets))
        got = [(f.timestamp, f.image.tobytes(), f.image.shape) for f in lazy]
    assert got == eager  # same frames, same pixels, same exact timestamps
    assert lazy[0] is lazy[1]  # one frame answering two targets is one object
    assert all(isinstance(f, LazyFrame) for f in lazy)
    assert lazy[2].to_frame().image is lazy[2].image


@pytest.mark.parametrize("rotation", [0, 90, 270])
def test_resized_and_capped_are_upright_and_faithful(video_factory, rotation: int) -> None:
    size = (64, 96) if rotation % 180 else (96, 64)
    # a gradient with a moving square: a picture turned the wrong way is far off
    scenes = [Scene(3.0, layout="gradient")]
    truth = video_factory("gradient", scenes, size=size, rotation=rotation)
    with PyAVSource(truth.path) as src:
        frame = next(src.lazy_frames_at([1.5]))
        assert frame.size == size
        small = frame.resized((24, 20))
        capped = frame.capped(48)
        assert frame.capped(4096) is frame.image  # fits already: the exact full image
        full = frame.image
    assert small.shape == (20, 24, 3) and small.flags["C_CONTIGUOUS"]
    want = np.asarray(Image.fromarray(full).resize((24, 20), Image.Resampling.BOX))
    assert _mean_diff(_blocks(small), _blocks(want)) < 8  # same picture, same way up
    wrong = np.asarray(Image.fromarray(full[::-1, ::-1]).resize((24, 20), Image.Resampling.BOX))
    assert _mean_diff(_blocks(small), _blocks(wrong)) > 15  # (a turned picture is far off)
    ref = cap_size(full, 48)
    assert capped.shape == ref.shape and _mean_diff(_blocks(capped), _blocks(ref)) < 8


def test_capped_size_rounds_like_cap_size() -> None:
    for w, h, side in [(1280, 720, 1024), (160, 90, 100), (90, 160, 100), (33, 17, 16)]:
        img = np.zeros((h, w, 3), np.uint8)
        assert capped_size(w, h, side)[::-1] == cap_size(img, side).shape[:2]
    assert capped_size(640, 360, 1024) == (640, 360)
    assert capped_size(640, 360, None) == (640, 360)


def test_last_frame_without_decoding_the_last_gop_twice(video_factory) -> None:
    """The stream ends on a reference frame (as x264 does): sampling past the end with
    non-reference frames skipped still gives the very last frame, with no extra seek."""
    truth = video_factory("bframes", SCENES, **BFRAMES)
    with PyAVSource(truth.path, min_seek_skip=1e9) as src:
        out = list(src.frames_at([2.0, 100.0]))
        assert src.seeks == 0
    assert out[-1].timestamp.exact == truth.frame_times[-1]
    with PyAVSource(truth.path, skip_nonref=False) as src:
        last = list(src.frames())[-1]
    assert out[-1].image.tobytes() == last.image.tobytes()


def test_thread_type_can_be_chosen(video_factory) -> None:
    truth = video_factory("bframes", SCENES, **BFRAMES)
    answers = []
    for threads in (False, True, "SLICE", "FRAME"):
        with PyAVSource(truth.path, threads=threads) as src:
            answers.append([(f.time, f.image.tobytes()) for f in src.frames_at([0.5, 7.0])])
    assert all(a == answers[0] for a in answers)
