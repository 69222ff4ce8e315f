"""The measured camera motion as facts for the prompts (template variable ``{camera}``).

    camera_fact(keyframes[2], keyframes[3])
    # " Measured from the video: between 4.0 s and 6.0 s the camera pans left, slowly."
    camera_summary(keyframes)
    # "\nCamera motion measured from the video (facts):\n[0.0 s - 4.0 s] the camera is ..."

Both are empty strings when the keyframes carry no camera motion (``keyframes.camera_motion``
off, or keyframes from before it existed), so a template that places ``{camera}`` renders
byte for byte as it did without it. See docs/camera.md.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from diffcap.errors import DiffcapError
from diffcap.keyframes.camera import describe
from diffcap.timeline import Keyframe

if TYPE_CHECKING:
    from diffcap.prompts.presets import TemplateSet


def camera_fact(prev: Keyframe, cur: Keyframe) -> str:
    """The differential prompt's fact for the interval from ``prev`` to ``cur`` ("" when
    not measured); it starts with a space, to follow a sentence."""
    if cur.camera is None:
        return ""
    return (
        f" Measured from the video: between {prev.time:.1f} s and {cur.time:.1f} s "
        f"{describe(cur.camera)}."
    )


def camera_summary(keyframes: Sequence[Keyframe]) -> str:
    """The summary prompt's facts: one line per run of intervals with the same motion ("" when
    none was measured); it starts with an empty line and each line ends with a newline."""
    runs: list[tuple[float, float, str]] = []
    for prev, cur in itertools.pairwise(keyframes):
        if cur.camera is None:
            continue
        text = describe(cur.camera)
        if runs and runs[-1][2] == text and abs(runs[-1][1] - prev.time) < 1e-6:
            runs[-1] = (runs[-1][0], cur.time, text)
        else:
            runs.append((prev.time, cur.time, text))
    if not runs:
        return ""
    lines = "".join(f"[{a:.1f} s - {b:.1f} s] {text}\n" for a, b, text in runs)
    head = "Camera motion measured from the video (facts; prefer them to the descriptions):"
    return f"\n{head}\n{lines}"


def facts_used(keyframes: Sequence[Keyframe], templates: TemplateSet) -> bool:
    """Whether camera facts reach a prompt: a keyframe carries camera motion and the
    differential or summary template places ``{camera}``."""
    if not any(k.camera is not None for k in keyframes):
        return False
    names = ("differential", "summary")
    return any("camera" in getattr(_get(templates, n), "variables", ()) for n in names)


def _get(templates: TemplateSet, name: str) -> Any:
    try:
        return templates[name]
    except (KeyError, TypeError, DiffcapError):  # a template set without it
        return None
