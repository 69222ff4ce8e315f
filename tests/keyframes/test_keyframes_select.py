"""Pure selection rules, names and ids (no video decoding)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from diffcap.keyframes import (
    Budget,
    GreedySelector,
    apply_budget,
    candidate_times,
    cap_size,
    is_solid,
    keep_last_frame,
    keyframe_name,
    make_video_ids,
    select_greedy,
)


def _unit(angle_deg: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([np.cos(a), np.sin(a)], np.float32)


def test_candidate_times_no_drift() -> None:
    assert candidate_times(0, 7, 2) == [0, 2, 4, 6]
    assert candidate_times(1, 7, 2) == [1, 3, 5]
    assert candidate_times(0, 6, 2) == [0, 2, 4]  # end is exclusive
    assert candidate_times(3, 3, 2) == []
    times = candidate_times(0, 3600, 0.1)
    assert len(times) == 36000 and times[-1] == pytest.approx(3599.9, abs=1e-9)


def test_greedy_compares_with_last_kept_not_previous() -> None:
    # slow drift: each step is 10 degrees (cos 0.985 > 0.93) but it adds up
    vecs = np.stack([_unit(10 * i) for i in range(10)])
    kept = select_greedy(vecs, threshold=0.93)  # cos(30 deg) = 0.866 < 0.93 <= cos(20 deg)
    assert kept == [0, 3, 6, 9]
    # a previous-candidate rule would have kept nothing but frame 0
    prev = [i for i in range(1, 10) if vecs[i] @ vecs[i - 1] < 0.93]
    assert prev == []


def test_static_adds_none_changes_add_one() -> None:
    vecs = np.stack([_unit(0)] * 5 + [_unit(90)] * 5 + [_unit(0)] * 3)
    assert select_greedy(vecs, 0.9) == [0, 5, 10]
    sel = GreedySelector(0.9)
    assert sel.offer(_unit(0)) == (True, None)
    keep, sim = sel.offer(_unit(5))
    assert not keep and sim == pytest.approx(np.cos(np.deg2rad(5)), abs=1e-6)


def test_last_frame_rule() -> None:
    assert keep_last_frame(10.0, 7.0, 2.0, kept=3)  # >= one interval after
    assert not keep_last_frame(8.5, 7.0, 2.0, kept=3)
    assert keep_last_frame(8.5, 0.0, 2.0, kept=1) and keep_last_frame(0.5, 0.0, 2.0, kept=1)
    assert not keep_last_frame(7.0, 7.0, 2.0, kept=1)  # the same frame


def test_budget_keeps_first_and_most_novel_in_time_order() -> None:
    sims = [None, 0.5, 0.9, 0.1, 0.8, 0.3]
    assert apply_budget(sims, None) == [0, 1, 2, 3, 4, 5]
    assert apply_budget(sims, 3) == [0, 3, 5]
    assert apply_budget(sims, 1) == [0]
    assert apply_budget([None, 0.5, 0.5, 0.5], 2) == [0, 1]  # ties keep the earlier
    budget: Budget[str] = Budget(2)
    assert budget.add("a", None) is None
    assert budget.add("b", 0.7) is None
    assert budget.add("c", 0.2) == "b"  # c is more novel: b falls out (caller deletes it)
    assert budget.add("d", 0.9) == "d"
    assert budget.items() == ["a", "c"]
    with pytest.raises(ValueError):
        Budget(0)


def test_is_solid() -> None:
    rng = np.random.default_rng(0)
    black = np.clip(rng.normal(3, 2, (360, 640, 3)), 0, 255).astype(np.uint8)
    assert is_solid(black)
    assert is_solid(np.full((90, 160, 3), (200, 10, 10), np.uint8))
    pattern = np.zeros((90, 160, 3), np.uint8)
    pattern[:, 80:] = 255
    assert not is_solid(pattern)


def test_names_sort_by_time() -> None:
    assert keyframe_name(3, 12.0, "jpg") == "kf_0003_000012.000.jpg"
    names = [
        keyframe_name(i, t, "png") for i, t in enumerate([0.0, 2.5, 9.99, 10.0, 100.0, 1234.5])
    ]
    assert sorted(names) == names
    assert keyframe_name(12345, 3.0, "jpg", width=5) == "kf_12345_000003.000.jpg"


def test_cap_size_never_upscales() -> None:
    img = np.zeros((720, 1280, 3), np.uint8)
    assert cap_size(img, 1024).shape == (576, 1024, 3)
    assert cap_size(img, 2000) is img
    assert cap_size(np.zeros((1920, 1080, 3), np.uint8), 1024).shape == (1024, 576, 3)


def test_video_ids_safe_and_unique() -> None:
    ids = make_video_ids(
        [
            "a/clip.mp4",
            "b/clip.mp4",
            "x y (1).mov",
            "https://h/v/Talk.mp4?s=1",
            "C/CLIP.mkv",
            "..",
            "noext",
        ]
    )
    assert len(set(i.lower() for i in ids)) == len(ids)
    assert ids[2] == "x_y_1" and ids[3] == "Talk" and ids[6] == "noext"
    assert all(i.startswith("clip-") or i.startswith("CLIP-") for i in (ids[0], ids[1], ids[4]))
    assert ids[5] == Path("..").resolve().name  # a path is named after what it resolves to
    for vid in ids:
        assert set(vid) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    # stable: independent of input order
    swapped = make_video_ids(["b/clip.mp4", "a/clip.mp4"])
    assert swapped == list(reversed(make_video_ids(["a/clip.mp4", "b/clip.mp4"])))
    # the same file twice is one video, with one id (the pipeline captions it once)
    assert make_video_ids(["same.mp4", "same.mp4"]) == ["same", "same"]
