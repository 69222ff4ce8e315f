"""Every shot gets a keyframe, fast cuts included, whatever the encoder did with keyframes.

Shots of 1.2 s sampled every 2 s: about every other shot holds no candidate, so each must be
found by the cut signal of the sampling pass (see docs/keyframes.md, "Cut candidates"). Real
encoders, the real weightless embedder, the default settings; the cost is checked as frames
decoded (not time), against the pass that decodes every reference frame.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import pytest

import diffcap.keyframes.extract as extract_mod
from diffcap.config import KeyframeConfig
from diffcap.keyframes import extract_keyframes
from diffcap.video.pyav import PyAVSource
from diffcap.video.synth import Scene, write_video

SHOTS, SHOT_S = 12, 1.2

#: (name, write_video settings): x264 with scene-cut keyframes (its presets), x264 with a
#: fixed 1-s GOP and no scene cuts (ultrafast), MPEG-4 part 2 with a 2-s GOP (its scene
#: detection marks only some cuts).
ENCODERS = {
    "x264-scenecut": {"codec": "h264", "options": {"preset": "veryfast"}},
    "x264-fixed-gop": {"codec": "h264", "gop": 25},
    "mpeg4-gop50": {"codec": "mpeg4", "gop": 50},
}


@pytest.fixture
def readers(monkeypatch: pytest.MonkeyPatch) -> list[PyAVSource]:
    """The sampling pass's readers (their ``frames_decoded``)."""
    seen: list[PyAVSource] = []
    real = extract_mod.open_sampler

    def spy(path, **kw):  # type: ignore[no-untyped-def]
        seen.append(real(path, **kw))  # type: ignore[arg-type]
        return seen[-1]

    monkeypatch.setattr(extract_mod, "open_sampler", spy)
    return seen


def covered(times: list[float], starts: list[float], end: float) -> list[bool]:
    bounds = [*starts, end]
    return [any(a - 1e-6 <= t < b for t in times) for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_fast_cuts_are_all_covered(tmp_path: Path, encoder: str, readers: list[PyAVSource]) -> None:
    suffix = ".avi" if ENCODERS[encoder]["codec"] == "mpeg4" else ".mp4"
    video = write_video(
        tmp_path / f"cuts{suffix}",
        [Scene(SHOT_S) for _ in range(SHOTS)],
        size=(320, 180),
        fps=25,
        detail=True,
        **ENCODERS[encoder],  # type: ignore[arg-type]
    )
    with av.open(str(video.path)) as c:
        total = sum(1 for _ in c.decode(video=0))
    full = extract_keyframes(video.path, KeyframeConfig(cut_scan_full=True))
    full_decoded = readers[-1].frames_decoded
    kset = extract_keyframes(video.path, KeyframeConfig())
    decoded = readers[-1].frames_decoded
    assert KeyframeConfig().interval > SHOT_S
    assert all(covered(kset.times, video.scene_starts, SHOTS * SHOT_S)), kset.times
    assert all(covered(full.times, video.scene_starts, SHOTS * SHOT_S))
    # never much more decoding than the pass that decodes every reference frame
    assert decoded <= full_decoded * 1.05 + 5
    if encoder == "x264-scenecut":  # cuts on keyframes: the stretches between stay skipped
        assert decoded < 0.5 * total


def test_static_footage_stays_sparse_and_skipped(tmp_path: Path, readers: list[PyAVSource]) -> None:
    """40 s of one shot (a square crossing a textured picture), a fixed 1-s GOP and no scene
    cuts: the stretches between candidates stay skipped (nothing changes on the keyframes,
    so nothing is looked into), and the keyframes are the first and the last frame."""
    video = write_video(
        tmp_path / "static.mp4", [Scene(40.0)], size=(192, 108), fps=10, detail=True, gop=10
    )
    full = extract_keyframes(video.path, KeyframeConfig(cut_scan_full=True))
    full_decoded = readers[-1].frames_decoded
    kset = extract_keyframes(video.path, KeyframeConfig())
    assert len(kset.keyframes) <= 1 + 40.0 / 20.0
    assert kset.times == full.times
    assert readers[-1].frames_decoded < 0.3 * full_decoded  # 49 of 400 frames here
