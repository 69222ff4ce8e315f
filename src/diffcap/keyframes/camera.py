"""Camera motion per keyframe interval: labels and magnitudes from measured global motion.

    from diffcap.keyframes.camera import camera_for_keyframes, describe
    keyframes = camera_for_keyframes(keyframes, probe.samples)   # probe: a MotionProbe
    keyframes[3].camera.label             # "pan_left" (from keyframe 2 to keyframe 3)
    describe(keyframes[3].camera)         # "the camera pans left, slowly"

The samples of an interval (see :mod:`diffcap.video.motion`) are summed up by their median
(robust to a sample that straddles the start of a move). Every
motion is turned into how fast the picture's edge moves, in frame sizes per second: a pan
or tilt by its rate, a zoom or roll by its rate times half the frame. The largest of these
names the interval; under :data:`STATIC` it is static. When the pan/tilt rate changes from
one sample to the next by more than that speed (``shake``: the median change), the camera is
handheld or shaking. See docs/camera.md for the method and its
limits.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from diffcap.timeline import CameraMotion, Keyframe
from diffcap.video.motion import MotionSample
from diffcap.video.simfit import median

#: Edge speed (frame sizes per second) under which the camera counts as static.
STATIC = 0.02
#: Edge speed bands: under SLOW slow, under MODERATE moderate, else fast.
SLOW, MODERATE = 0.12, 0.35
#: Jitter speed (frame sizes per second) from which shaking counts, and its bands.
SHAKE = 0.05
SHAKE_BANDS = (0.12, 0.3)
#: Fewest samples an interval needs for a label, and for telling shake.
MIN_SAMPLES = 1
SHAKE_SAMPLES = 3

_PHRASES = {
    "static": "is static",
    "pan_left": "pans left",
    "pan_right": "pans right",
    "tilt_up": "tilts up",
    "tilt_down": "tilts down",
    "zoom_in": "zooms in",
    "zoom_out": "zooms out",
    "roll": "rolls",
    "shake": "shakes (handheld)",
}
_ADVERBS = {"slow": "slowly", "moderate": "at a moderate speed", "fast": "fast"}
_SHAKE_ADVERBS = {"slow": "slightly", "moderate": "noticeably", "fast": "strongly"}


def _band(speed: float, bands: tuple[float, float]) -> str:
    return "slow" if speed < bands[0] else "moderate" if speed < bands[1] else "fast"


def label_samples(samples: Sequence[MotionSample]) -> CameraMotion | None:
    """The camera motion the samples show (None: fewer than :data:`MIN_SAMPLES`)."""
    if len(samples) < MIN_SAMPLES:
        return None
    rates = np.array([[s.vx, s.vy, s.zoom, s.roll] for s in samples])
    # medians: a sample straddling the start of a move (or a jolt) is neither a move of the
    # interval nor shake
    centre = median(rates, axis=0)
    # shake: how much the pan/tilt rate changes from one sample to the next (a pan, even
    # an accelerating one, changes little; a handheld camera swings back and forth)
    jitter = 0.0
    if len(samples) >= SHAKE_SAMPLES:
        jitter = float(median(np.hypot(*np.diff(rates[:, :2], axis=0).T)))
    edge = {"pan": abs(centre[0]), "tilt": abs(centre[1]), "zoom": abs(centre[2]) / 2}
    edge["roll"] = abs(centre[3]) / 2
    kind = max(edge, key=lambda k: edge[k])
    speed = edge[kind]
    if jitter >= SHAKE and jitter >= speed:
        label, magnitude = "shake", _band(jitter, SHAKE_BANDS)
    elif speed < STATIC:
        label, magnitude = "static", None
    else:
        label, magnitude = _direction(kind, centre), _band(speed, (SLOW, MODERATE))
    return CameraMotion(
        label=label,
        magnitude=magnitude,
        pan=round(float(centre[0]), 4) + 0.0,  # (+ 0.0: no "-0.0")
        tilt=round(float(-centre[1]), 4) + 0.0,
        zoom=round(float(centre[2]), 4) + 0.0,
        roll=round(math.degrees(float(centre[3])), 4) + 0.0,
        shake=round(jitter, 4),
        samples=len(samples),
        source=samples[-1].source,
    )


def _direction(kind: str, centre: np.ndarray) -> str:
    if kind == "pan":
        return "pan_right" if centre[0] > 0 else "pan_left"
    if kind == "tilt":
        return "tilt_down" if centre[1] > 0 else "tilt_up"
    if kind == "zoom":
        return "zoom_in" if centre[2] > 0 else "zoom_out"
    return "roll"


def camera_for_keyframes(
    keyframes: Sequence[Keyframe], samples: Sequence[MotionSample]
) -> list[Keyframe]:
    """Each keyframe after the first with the camera motion of the interval since the
    previous keyframe (samples at times in ``(previous, this]``)."""
    times = np.array([s.time for s in samples])
    out = list(keyframes[:1])
    for prev, cur in itertools.pairwise(keyframes):
        inside = np.nonzero((times > prev.time) & (times <= cur.time + 1e-6))[0]
        out.append(replace(cur, camera=label_samples([samples[int(i)] for i in inside])))
    return out


def describe(camera: CameraMotion) -> str:
    """``"the camera pans left, slowly"``; ``"the camera is static"``."""
    phrase = _PHRASES.get(camera.label, camera.label.replace("_", " "))
    if camera.label == "roll":
        phrase += " counter-clockwise" if camera.roll > 0 else " clockwise"
    if camera.magnitude is None:
        return f"the camera {phrase}"
    adverbs = _SHAKE_ADVERBS if camera.label == "shake" else _ADVERBS
    return f"the camera {phrase}, {adverbs.get(camera.magnitude, camera.magnitude)}"


__all__ = ["camera_for_keyframes", "describe", "label_samples"]
