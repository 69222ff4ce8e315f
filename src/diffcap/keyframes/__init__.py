"""Semantic-aware keyframe selection (the paper's rule, its defects fixed) and its outputs.

    from diffcap.config import KeyframeConfig
    from diffcap.keyframes import KeyframeSet, extract_keyframes, make_video_ids

    kset = extract_keyframes("clip.mp4", KeyframeConfig(), out_dir=Path("out"))
    KeyframeSet.load(kset.json_path).times          # [0.0, 4.004, ...]

The rules, outputs and options are described in docs/keyframes.md.
"""

from diffcap.keyframes.extract import KeyframesSkipped, extract_keyframes, plan_window
from diffcap.keyframes.kset import KeyframeSet, make_video_ids
from diffcap.keyframes.select import (
    Budget,
    GreedySelector,
    apply_budget,
    candidate_times,
    is_solid,
    keep_last_frame,
    select_greedy,
)
from diffcap.keyframes.writer import cap_size, keyframe_name

__all__ = [
    "Budget",
    "GreedySelector",
    "KeyframeSet",
    "KeyframesSkipped",
    "apply_budget",
    "candidate_times",
    "cap_size",
    "extract_keyframes",
    "is_solid",
    "keep_last_frame",
    "keyframe_name",
    "make_video_ids",
    "plan_window",
    "select_greedy",
]
