"""Variable frame rate: the average rate is measured from packet timestamps, not the header."""

from __future__ import annotations

from fractions import Fraction

import pytest

from diffcap.video import probe
from diffcap.video.probe import RATE_DENOMINATOR, VFR_SCAN_PACKETS, measured_rate
from diffcap.video.synth import Scene, vfr_times

NTSC = Fraction(30000, 1001)


def _true_rate(truth) -> float:
    return truth.frame_count / truth.duration


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
@pytest.mark.parametrize("seconds", [6.0, 20.0])  # all packets scanned / only the first 300
def test_vfr_rate_and_count_come_from_timestamps(video_factory, suffix, seconds) -> None:
    truth = video_factory(
        "vfr-rate", [Scene(seconds)], suffix=suffix, size=(64, 48), frame_times=vfr_times(seconds)
    )
    assert (truth.frame_count > VFR_SCAN_PACKETS) == (seconds > 10)
    info = probe(truth.path)
    assert info.variable_fps is True
    # the header rate of an mkv is 30/1 here; the true average is ~22 fps
    assert float(info.fps) == pytest.approx(_true_rate(truth), rel=0.02)
    assert info.fps.denominator <= RATE_DENOMINATOR
    assert info.frame_count == pytest.approx(truth.frame_count, rel=0.05)
    if not info.frame_count_exact:  # mp4 stores the count; mkv is estimated
        assert suffix == ".mkv"
    exact = probe(truth.path, exact_count=True)
    assert (exact.frame_count, exact.frame_count_exact) == (truth.frame_count, True)
    assert exact.fps == info.fps


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".ts"])
def test_constant_rate_keeps_the_exact_header_rate(video_factory, suffix) -> None:
    truth = video_factory("cfr-ntsc", suffix=suffix, fps=NTSC)
    info = probe(truth.path)
    assert info.variable_fps is False
    assert info.fps == NTSC
    assert info.frame_count == truth.frame_count


def test_measured_rate_whole_stream_and_prefix() -> None:
    tb = Fraction(1, 1000)
    pts = [0, 33, 67, 167, 183, 217, 250, 350]  # ms, gaps 1/30 1/30 1/10 1/60 ...
    # the whole stream: frames / duration
    assert measured_rate(pts, tb, 0.4, complete=True) == Fraction(20)
    # packets ending far before the header's duration (a cut file): their own span counts
    assert measured_rate(pts, tb, 4.0, complete=True) == Fraction(7, 350) * 1000
    # a prefix: (frames - 1) / span, limited to a readable denominator
    rate = measured_rate(pts, tb, 99.0, complete=False)
    assert rate == Fraction(7, 350) * 1000 and rate.denominator <= RATE_DENOMINATOR
    assert measured_rate([5], tb, 1.0, complete=True) is None
    assert measured_rate([5, 5], tb, 0.0, complete=False) is None
