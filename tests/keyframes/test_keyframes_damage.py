"""Damaged videos: keyframes.json says what was lost (``damaged``), apart from ``truncated``."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from diffcap.config import KeyframeConfig
from diffcap.keyframes import KeyframeSet, extract_keyframes
from diffcap.keyframes.kset import Damage
from diffcap.video.synth import Scene, SynthVideo, write_video

NTSC = Fraction(30000, 1001)
SCENES = [Scene(3.0), Scene(3.0), Scene(3.0), Scene(3.012)]  # 12.012 s at 29.97 fps


@pytest.fixture(scope="module", params=[".mp4", ".mkv"])
def cut_video(request, tmp_path_factory) -> tuple[SynthVideo, Path]:
    d = tmp_path_factory.mktemp("kf-damage")
    truth = write_video(d / f"full{request.param}", SCENES, size=(96, 64), fps=NTSC)
    data = truth.path.read_bytes()
    cut = d / f"half{request.param}"
    cut.write_bytes(data[: len(data) // 2])  # an interrupted download
    return truth, cut


def test_half_cut_video_is_recorded_as_damaged(cut_video, tmp_path: Path) -> None:
    truth, cut = cut_video
    kset = extract_keyframes(cut, KeyframeConfig(), out_dir=tmp_path, video_id="half")
    assert kset.damaged is not None
    d = json.loads((tmp_path / "half" / "keyframes.json").read_text())
    damaged = d["damaged"]
    assert damaged["expected_duration"] == pytest.approx(12.012, abs=0.01)
    assert d["duration"] == pytest.approx(12.012, abs=0.01)  # the header's claim, kept
    until = damaged["decoded_until"]
    assert 3.0 < until < 10.0  # about half of 12 s
    # decoded_until is a real frame time, and no keyframe lies past it
    assert min(abs(float(t) - until) for t in truth.frame_times) < 1e-3
    assert kset.times and max(kset.times) <= until + 1e-6
    assert f"decoded {until:.1f} s of 12.0 s" in damaged["message"]
    assert d["truncated"] is False  # max_seconds did not cut anything
    again = KeyframeSet.load(tmp_path / "half" / "keyframes.json")
    assert again.damaged == kset.damaged and "damaged" not in again.extra


def test_intact_video_has_damaged_null(cut_video, tmp_path: Path) -> None:
    truth, _ = cut_video
    kset = extract_keyframes(truth.path, KeyframeConfig(), out_dir=tmp_path, video_id="full")
    assert kset.damaged is None
    d = json.loads((tmp_path / "full" / "keyframes.json").read_text())
    assert "damaged" in d and d["damaged"] is None
    assert KeyframeSet.load(kset.json_path).damaged is None


def test_max_seconds_sets_truncated_not_damaged(cut_video) -> None:
    """``truncated`` is the max_seconds cap; damage past the window goes unseen."""
    _, cut = cut_video
    kset = extract_keyframes(cut, KeyframeConfig(max_seconds=2.0))
    assert kset.truncated is True and kset.window == (0.0, 2.0)
    assert kset.damaged is None


def test_damage_json_round_trip_and_old_files() -> None:
    dmg = Damage(decoded_until=7.14, expected_duration=12.012, lost_packets=2)
    d = dmg.to_json()
    assert d["message"] == (
        "decoded 7.1 s of 12.0 s (truncated or damaged file); 2 packet(s) could not be decoded"
    )
    assert Damage.from_json(d) == dmg
    only_packets = Damage(decoded_until=None, expected_duration=5.0, lost_packets=3)
    assert only_packets.message == "3 packet(s) could not be decoded"
    assert Damage.from_json(None) is None and Damage.from_json({}) is None
