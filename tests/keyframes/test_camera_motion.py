"""Camera motion per keyframe interval, measured on clips with known camera moves.

Each clip is a window moving over a large random-texture image (see
:mod:`diffcap.video.camsynth`): pans and tilts at several speeds, zooms, a roll, a static
shot with a subject crossing it and handheld shake, two seconds each. Keyframes are forced
every second (``threshold=1.0``), so every interval lies inside one move.
"""

from __future__ import annotations

import gc
import json
import math

import av
import numpy as np
import pytest

from diffcap.config import KeyframeConfig
from diffcap.keyframes import KeyframeSet, extract_keyframes
from diffcap.keyframes.camera import describe, label_samples
from diffcap.timeline import CameraMotion, Keyframe, VideoRecord
from diffcap.video.camsynth import Move, write_camera_clip
from diffcap.video.motion import MotionProbe, MotionSample, fit_similarity
from diffcap.video.pyav import PyAVSource
from diffcap.video.simfit import median

MOVES = [
    Move("static"),
    Move("pan_left", 2.0, 0.05),
    Move("pan_right", 2.0, 0.3),
    Move("tilt_up", 2.0, 0.1),
    Move("tilt_down", 2.0, 0.5),
    Move("zoom_in", 2.0, 0.25),
    Move("zoom_out", 2.0, 0.3),
    Move("roll", 2.0, 10.0),
    Move("subject"),
    Move("shake", 2.0, 0.015),
    Move("pan_left", 2.0, 0.6),
    Move("tilt_up", 2.0, 0.08),
]
ENCODERS = {
    "h264": ("libx264", {"preset": "medium", "crf": "23"}),  # B-frames, b-pyramid, 3 refs
    "mpeg4": ("mpeg4", {"qscale": "4", "g": "250"}),  # (its default GOP: test_short_gops)
    "hevc": ("libx265", {"preset": "ultrafast", "x265-params": "log-level=error"}),  # no MVs
}
CFG = KeyframeConfig(interval=1.0, threshold=1.0)


def truth_at(truth: list[tuple[float, float, str]], start: float, end: float) -> str | None:
    """The move an interval lies in (None when it straddles two)."""
    for a, b, label in truth:
        if a - 1e-6 <= start and end <= b + 1e-6:
            return label
    return None


@pytest.fixture(scope="module", params=sorted(ENCODERS))
def measured(request, tmp_path_factory):
    codec, options = ENCODERS[request.param]
    path = tmp_path_factory.mktemp("camera") / f"moves_{request.param}.mp4"
    truth = write_camera_clip(path, MOVES, codec=codec, options=options)
    kset = extract_keyframes(path, CFG, out_dir=path.parent)
    pairs = []
    for prev, cur in zip(kset.keyframes, kset.keyframes[1:], strict=False):
        pairs.append((prev.time, cur.time, truth_at(truth, prev.time, cur.time), cur.camera))
    return request.param, kset, pairs


def test_labels_are_right_for_at_least_95_percent_of_intervals(measured) -> None:
    codec, kset, pairs = measured
    judged = [(t0, want, cam) for t0, _, want, cam in pairs if want is not None]
    assert len(judged) >= 20
    right = [cam is not None and cam.label == want for _, want, cam in judged]
    wrong = [
        (t0, want, cam and cam.label)
        for (t0, want, cam), ok in zip(judged, right, strict=True)
        if not ok
    ]
    assert sum(right) / len(right) >= 0.95, wrong
    expected = "flow" if codec == "hevc" else "mvs"
    assert kset.extra["camera_motion"]["source"] == expected


def test_static_shot_with_a_moving_subject_is_static(measured) -> None:
    _, _, pairs = measured
    subject = [cam for t0, _, want, cam in pairs if want == "static" and 16.0 <= t0 < 18.0]
    assert len(subject) == 2
    assert all(c is not None and c.label == "static" and c.magnitude is None for c in subject)


def test_magnitudes_follow_the_speed(measured) -> None:
    _, _, pairs = measured

    def seen(start: float) -> list:
        """The cameras of the intervals inside the move that starts at ``start``."""
        cams = [cam for t0, t1, want, cam in pairs if want and start <= t0 and t1 <= start + 2]
        assert cams and all(c is not None for c in cams)
        return cams

    assert {(c.label, c.magnitude) for c in seen(2.0)} == {("pan_left", "slow")}  # 0.05/s
    assert {(c.label, c.magnitude) for c in seen(20.0)} == {("pan_left", "fast")}  # 0.6/s
    assert {c.magnitude for c in seen(8.0)} == {"fast"}  # tilt 0.5 heights/s
    # a fast pan's rate is measured (slow motions read low with MPEG-4's zero-biased
    # vectors, and fast ones can read high with H.264: see docs/camera.md)
    assert all(c.pan == pytest.approx(-0.6, rel=0.2) for c in seen(20.0))


def test_keyframes_json_and_record_carry_the_camera(measured) -> None:
    _, kset, _ = measured
    assert kset.json_path is not None
    data = json.loads(kset.json_path.read_text())
    assert "camera" not in data["keyframes"][0]  # no interval before the first keyframe
    cam = data["keyframes"][3]["camera"]
    assert cam["label"] == "pan_left" and cam["samples"] >= 2
    loaded = KeyframeSet.load(kset.json_path)
    assert [k.camera for k in loaded.keyframes] == [k.camera for k in kset.keyframes]
    record = VideoRecord(kset.video_id, "v.mp4", 24.0, loaded.keyframes, [], "slide")
    listed = record.to_json()["keyframes"]
    assert "camera" not in listed[0] and listed[3]["camera"]["label"] == "pan_left"
    assert VideoRecord.from_json(record.to_json()).keyframes[3].camera == kset.keyframes[3].camera


def test_turned_off_leaves_keyframes_json_as_before(tmp_path) -> None:
    path = tmp_path / "pan.mp4"
    write_camera_clip(path, [Move("pan_right", 2.0, 0.3)], codec="mpeg4", options={"g": "250"})
    on = extract_keyframes(path, CFG, out_dir=tmp_path / "on")
    off = extract_keyframes(
        path, CFG.model_copy(update={"camera_motion": False}), out_dir=tmp_path / "off"
    )
    assert on.times == off.times
    text = (tmp_path / "off" / off.video_id / "keyframes.json").read_text()
    assert '"camera' not in text
    assert on.keyframes[1].camera is not None and on.keyframes[1].camera.label == "pan_right"


def test_short_gops_leave_gaps_but_no_wrong_labels(tmp_path) -> None:
    """A codec keyframe every 0.4 s: the reader jumps from keyframe to keyframe and decodes
    only the last GOP before each target, so some intervals hold no inter frame. Those get
    no camera (unknown), never a guess."""
    path = tmp_path / "short_gop.mp4"
    moves = [Move("pan_left", 2.0, 0.3), Move("tilt_down", 2.0, 0.2), Move("subject", 2.0)]
    truth = write_camera_clip(path, moves, codec="mpeg4", options={"qscale": "4"})
    kset = extract_keyframes(path, CFG)
    told = [
        (truth_at(truth, prev.time, cur.time), cur.camera.label)
        for prev, cur in zip(kset.keyframes, kset.keyframes[1:], strict=False)
        if cur.camera is not None and truth_at(truth, prev.time, cur.time) is not None
    ]
    assert len(told) >= 2
    assert all(want == got for want, got in told), told


def test_reading_vectors_leaves_no_frame_to_the_garbage_collector(tmp_path) -> None:
    """The probe reads a frame's side data without PyAV's frame <-> container cycle: with the
    collector off, the frames it read are freed as the reader drops them."""
    path = tmp_path / "pan.mp4"
    write_camera_clip(path, [Move("pan_right", 3.0, 0.3)], codec="mpeg4", options={"g": "250"})
    gc.collect()
    gc.disable()
    try:
        with PyAVSource(path, export_mvs=True) as src:
            probe = MotionProbe(src.time_of)
            src.tap(probe)
            for _ in src.frames(0.0):
                pass
            alive = sum(isinstance(o, av.VideoFrame) for o in gc.get_objects())
    finally:
        gc.enable()
    assert probe.mode == "mvs" and len(probe.samples) >= 10  # read: 5 a second
    assert alive <= 6  # (the reader's frames in flight; 90 were decoded)


# --- the parts, on numbers ------------------------------------------------------------------


def test_fit_ignores_a_moving_subject() -> None:
    rng = np.random.default_rng(1)
    dst = rng.uniform(-160, 160, (400, 2))
    angle, scale, shift = math.radians(2.0), 0.97, np.array([3.0, -1.5])
    rot = scale * np.array(
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    )
    src = dst @ rot.T + shift + rng.normal(0, 0.25, dst.shape)
    src[:160] = dst[:160] + np.array([-9.0, 4.0])  # 40% of the blocks: a subject of its own
    (a, b, tx, ty), inliers = fit_similarity(dst, src)
    assert math.hypot(a, b) == pytest.approx(scale, abs=0.003)
    assert math.atan2(b, a) == pytest.approx(angle, abs=0.003)
    assert (tx, ty) == pytest.approx((3.0, -1.5), abs=0.15)
    assert 0.5 < inliers < 0.7


def _samples(vx: list[float], vy: list[float] | None = None) -> list[MotionSample]:
    vy = vy or [0.0] * len(vx)
    return [
        MotionSample(0.1 * (i + 1), 0.1, x, y, 0.0, 0.0, 0.9, "mvs")
        for i, (x, y) in enumerate(zip(vx, vy, strict=True))
    ]


def test_labels_from_samples() -> None:
    assert label_samples([]) is None
    assert label_samples(_samples([0.2])).label == "pan_right"  # shake needs 3 samples
    assert label_samples(_samples([0.005, -0.004, 0.003])).label == "static"
    pan = label_samples(_samples([0.2, 0.22, 0.18, 0.2]))
    assert (pan.label, pan.magnitude) == ("pan_right", "moderate")
    assert pan.pan == pytest.approx(0.2)
    shake = label_samples(_samples([0.3, -0.25, 0.28, -0.3], [-0.2, 0.25, -0.1, 0.2]))
    assert shake.label == "shake"
    # one sample straddling the start of a pan is not shake
    assert label_samples(_samples([0.0, 0.02, 0.02, 0.02], [0.3, 0.0, 0.0, 0.0])).label != "shake"


def test_describe() -> None:
    assert describe(CameraMotion("pan_left", "slow")) == "the camera pans left, slowly"
    assert describe(CameraMotion("static", None)) == "the camera is static"
    assert describe(CameraMotion("roll", "fast", roll=-20.0)) == "the camera rolls clockwise, fast"
    assert describe(CameraMotion("shake", "slow")) == "the camera shakes (handheld), slightly"


def test_keyframe_json_round_trip() -> None:
    kf = Keyframe(1, 2.0, 60, "a.jpg", CameraMotion("zoom_in", "slow", zoom=0.1, samples=5))
    assert Keyframe.from_json(kf.to_json()) == kf
    assert "camera" not in Keyframe(0, 0.0, 0).to_json()


def test_median_is_numpys() -> None:
    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 8):
        rates = rng.normal(size=(n, 4))
        assert np.allclose(median(rates, axis=0), np.median(rates, axis=0))
        assert median(rates[:, 1]) == pytest.approx(float(np.median(rates[:, 1])))
    with pytest.raises(ValueError):
        median(np.array([]))
