"""Frames are found by presentation time: exact PTS x time base, on every kind of timing."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from diffcap.video import open_video, probe
from diffcap.video.pyav import PyAVSource
from diffcap.video.synth import Scene, vfr_times

NTSC = Fraction(30000, 1001)


def _first_at_or_after(times: list[Fraction], t: float) -> Fraction:
    return next((x for x in times if x >= Fraction(t) - Fraction(1, 10**6)), times[-1])


def _assert_looks_like(truth, frame, tol: float = 25.0) -> None:
    """The decoded picture is the one painted for its timestamp (so the time is honest)."""
    expected = truth.image_at(frame.time).astype(np.int16)
    diff = np.abs(frame.image.astype(np.int16) - expected).mean()
    assert diff < tol, f"frame at {frame.time:.3f}s differs from its ground truth by {diff:.1f}"


def test_ntsc_timestamps_are_pts_times_time_base(video_factory) -> None:
    truth = video_factory("ntsc", fps=NTSC)
    with open_video(truth.path) as src:
        frames = list(src.frames())
    assert [f.timestamp.exact for f in frames] == truth.frame_times
    for f in frames:
        assert f.timestamp.exact == (f.timestamp.pts - f.timestamp.origin) * f.timestamp.time_base
        assert f.image.dtype == np.uint8 and f.image.shape == (64, 96, 3)
    # Not rounded to 30 fps: the 60th frame is at 59 * 1001/30000 s.
    assert frames[59].time == pytest.approx(59 * 1001 / 30000, abs=1e-9)
    assert frames[59].time != pytest.approx(59 / 30, abs=1e-4)


def test_frames_at_lands_within_one_frame(video_factory) -> None:
    truth = video_factory("ntsc", fps=NTSC)
    rng = np.random.default_rng(1)
    targets = sorted([*rng.uniform(0, 2.9, 25).tolist(), 1001 / 30000 * 10])
    with open_video(truth.path) as src:
        got = list(src.frames_at(targets))
    assert len(got) == len(targets)
    for t, f in zip(targets, got, strict=True):
        assert f.timestamp.exact == _first_at_or_after(truth.frame_times, t)
        assert t - 1e-6 <= f.time < t + 1001 / 30000
        _assert_looks_like(truth, f)


def test_frames_every_and_windows(video_factory) -> None:
    truth = video_factory("ntsc", fps=NTSC)
    with open_video(truth.path) as src:
        every = [f.time for f in src.frames(every=0.5)]
        window = [f.time for f in src.frames(start=1.0, end=1.2)]
        tail = list(src.frames(start=2.5, every=1.0))
        empty = list(src.frames(start=100.0))
    want = [float(_first_at_or_after(truth.frame_times, 0.5 * k)) for k in range(6)]
    assert every == want
    assert window == [float(t) for t in truth.frame_times if 1.0 <= t < 1.2]
    assert [f.time for f in tail] == [float(_first_at_or_after(truth.frame_times, 2.5))]
    assert empty == []


def test_past_the_end_repeats_the_last_frame_and_rewinds(video_factory) -> None:
    truth = video_factory("ntsc", fps=NTSC)
    last = truth.frame_times[-1]
    with open_video(truth.path) as src:
        out = list(src.frames_at([0.0, 0.0, 2.95, 50.0, 60.0]))
        again = list(src.frames_at([0.2]))  # earlier than where decoding stopped: rewinds
        all_frames = list(src.frames())
    assert [f.timestamp.exact for f in out] == [0, 0, last, last, last]
    assert again[0].timestamp.exact == _first_at_or_after(truth.frame_times, 0.2)
    assert len(all_frames) == truth.frame_count


def test_bad_arguments_are_refused(video_factory) -> None:
    truth = video_factory("ntsc", fps=NTSC)
    with open_video(truth.path) as src:
        with pytest.raises(ValueError, match="ascending"):
            list(src.frames_at([1.0, 0.5]))
        with pytest.raises(ValueError, match="every"):
            list(src.frames(every=0))
        assert list(src.frames_at([])) == []


def test_variable_frame_rate(video_factory) -> None:
    truth = video_factory("vfr", frame_times=vfr_times(3.0))
    info = probe(truth.path)
    assert info.variable_fps is True
    assert info.frame_count == truth.frame_count
    with open_video(truth.path) as src:
        times = [f.timestamp.exact for f in src.frames()]
        targets = [0.05, 0.1, 0.51, 1.234, 2.0, 2.9]
        picked = [f.timestamp.exact for f in src.frames_at(targets)]
    assert times == truth.frame_times  # gaps of 1/60 .. 1/10 s, all exact
    assert picked == [_first_at_or_after(truth.frame_times, t) for t in targets]
    assert probe(video_factory("ntsc", fps=NTSC).path).variable_fps is False


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".ts"])
def test_nonzero_start_pts_starts_at_zero(video_factory, suffix: str) -> None:
    truth = video_factory("late-start", suffix=suffix, fps=NTSC, start_pts=900)
    info = probe(truth.path)
    assert info.start_time > 0  # the stream really does not start at PTS 0
    assert info.duration == pytest.approx(3.003, abs=0.05)
    with open_video(truth.path) as src:
        frames = list(src.frames())
        picked = list(src.frames_at([0.0, 1.5]))
    assert frames[0].time == 0.0 and picked[0].time == 0.0
    assert len(frames) == truth.frame_count
    # Matroska stores milliseconds; MP4 and MPEG-TS keep the exact 1001/30000 steps.
    tol = 1e-3 if suffix == ".mkv" else 1e-9
    np.testing.assert_allclose(
        [f.time for f in frames], [float(t) for t in truth.frame_times], atol=tol
    )
    assert abs(picked[1].time - float(_first_at_or_after(truth.frame_times, 1.5))) <= tol
    for f in frames[::10]:
        _assert_looks_like(truth, f)


def _sparse(path, targets, **kw) -> list[tuple[float, bytes]]:
    with PyAVSource(path, **kw) as src:
        return [(f.time, f.image.tobytes()) for f in src.frames_at(targets)]


@pytest.mark.parametrize("suffix", [".mp4", ".ts"])
def test_seeking_and_skipping_never_change_the_answer(video_factory, suffix: str) -> None:
    """Index seeks (mp4), learned-GOP seeks (ts, no index) and skipped non-reference frames
    give the very same frames as one plain sequential decode."""
    scenes = [Scene(4.0), Scene(4.0), Scene(4.0)]
    truth = video_factory(
        "bframes",
        scenes,
        suffix=suffix,
        size=(64, 48),
        fps=25,
        gop=25,
        options={"preset": "veryfast", "bf": "3"},
    )
    targets = [0.0, 0.3, 2.9, 3.0, 5.55, 9.0, 9.04, 11.2, 11.96]
    plain = _sparse(
        truth.path, targets, min_seek_skip=1e9, seek_threshold=1e9, skip_nonref=False, threads=False
    )
    fast = _sparse(truth.path, targets, min_seek_skip=0.1, seek_threshold=0.5)
    assert fast == plain
    want = [float(_first_at_or_after(truth.frame_times, t)) for t in targets]
    assert [t for t, _ in plain] == pytest.approx(want, abs=1e-9)


def test_seek_counts_on_long_gop(video_factory, monkeypatch) -> None:
    """Near targets are decoded forward, far ones (past a keyframe) are seeked to."""
    scenes = [Scene(5.0), Scene(5.0)]
    truth = video_factory("gop1s", scenes, size=(64, 48), fps=20, gop=20)
    seeks: list[float] = []
    original = PyAVSource._seek

    def counting(self, t):
        seeks.append(t)
        return original(self, t)

    monkeypatch.setattr(PyAVSource, "_seek", counting)
    with PyAVSource(truth.path) as src:
        near = list(src.frames_at([0.0, 0.1, 0.2, 0.3]))
        assert seeks == []
        far = list(src.frames_at([6.0, 9.5]))
    assert len(seeks) == 2
    assert [f.time for f in near + far] == [0.0, 0.1, 0.2, 0.3, 6.0, 9.5]


def test_sparse_sampling_decodes_less(video_factory) -> None:
    """Skipping non-reference frames and seeking over whole GOPs cut decoding work."""
    scenes = [Scene(4.0), Scene(4.0), Scene(4.0)]
    truth = video_factory(
        "bframes", scenes, size=(64, 48), fps=25, gop=25, options={"preset": "veryfast", "bf": "3"}
    )
    targets = [2.0 * k for k in range(6)]
    work = {}
    for name, kw in {
        "plain": {"min_seek_skip": 1e9, "skip_nonref": False},
        "skip": {"min_seek_skip": 1e9},
        "skip+seek": {},
    }.items():
        with PyAVSource(truth.path, **kw) as src:
            list(src.frames_at(targets))
            work[name] = (src.frames_decoded, src.seeks)
    assert work["plain"] == (sum(1 for t in truth.frame_times if t <= 10), 0)  # all up to 10 s
    assert work["skip"][0] < 0.8 * work["plain"][0]
    assert work["skip+seek"][0] < work["skip"][0] and work["skip+seek"][1] > 0
