"""How right is the measured camera motion, and what does it add to keyframe extraction?

Accuracy: clips with known camera moves (a window moving over a large random-texture image,
:mod:`diffcap.video.camsynth`: pans and tilts at several speeds, zooms, a roll, a static
shot with a subject crossing it, handheld shake; 2 s each), encoded with H.264 (x264's
defaults: B-frames, b-pyramid, 3 references), MPEG-4 part 2 and HEVC (no motion vectors
exported: the flow fallback). Keyframes are forced every second (``threshold=1.0``); every
interval inside one move is judged. Printed: right / judged per codec and overall, and how
many intervals got no label (no inter frame decoded in them).

Cost: ``extract_keyframes`` with the default settings (weightless embedder, JPEGs written)
with ``camera_motion`` off and on, interleaved, on one clip: 1280x720 30 fps H.264 at x264's
default settings, a fine texture panning across shots like benchmarks/keyframes.py's (or
``--video``). Printed: median wall and CPU seconds of each and the added share (goal <= 10%).

    .venv/bin/python benchmarks/camera_motion.py
    .venv/bin/python benchmarks/camera_motion.py --duration 60 --repeats 5 --video clip.mp4
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

from diffcap.config import KeyframeConfig
from diffcap.keyframes import extract_keyframes
from diffcap.video.camsynth import Move, write_camera_clip
from diffcap.video.synth import Scene, write_video

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
    Move("pan_right", 2.0, 0.12),
    Move("zoom_out", 2.0, 0.15),
    Move("tilt_down", 2.0, 0.2),
    Move("shake", 2.0, 0.01),
]
ENCODERS = {
    "h264": ("libx264", {"preset": "medium", "crf": "23"}),
    "mpeg4": ("mpeg4", {"qscale": "4", "g": "250"}),
    "hevc": ("libx265", {"preset": "ultrafast", "x265-params": "log-level=error"}),
}


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def make_clip(path: Path, duration: float) -> None:
    """benchmarks/keyframes.py's clip: 6 shots under a panning fine texture, x264 defaults."""
    each = duration / 6
    write_video(
        path,
        [Scene(each) for _ in range(6)],
        codec="h264",
        size=(1280, 720),
        fps=30,
        detail=True,
        options={"preset": "medium", "crf": "23"},
    )


def accuracy(tmp: Path, seeds: int) -> None:
    cfg = KeyframeConfig(interval=1.0, threshold=1.0)
    total_right = total = 0
    for name, (codec, options) in ENCODERS.items():
        right = judged = unlabeled = 0
        wrong: list[str] = []
        for seed in range(seeds):
            path = tmp / f"moves_{name}_{seed}.mp4"
            truth = write_camera_clip(path, MOVES, codec=codec, options=options, seed=seed)
            kset = extract_keyframes(path, cfg)
            for prev, cur in zip(kset.keyframes, kset.keyframes[1:], strict=False):
                want = next(
                    (lab for a, b, lab in truth if a - 1e-6 <= prev.time and cur.time <= b + 1e-6),
                    None,
                )
                if want is None:
                    continue  # straddles two moves
                judged += 1
                got = cur.camera.label if cur.camera is not None else None
                unlabeled += got is None
                if got == want:
                    right += 1
                else:
                    wrong.append(f"{prev.time:.1f}s {want}->{got}")
        total_right, total = total_right + right, total + judged
        print(
            f"  {name:6s} {right}/{judged} intervals right ({right / judged:.1%}), "
            f"{unlabeled} without a label" + (f"; wrong: {', '.join(wrong)}" if wrong else "")
        )
    print(f"  all    {total_right}/{total} ({total_right / total:.1%}; goal >= 95%)")


def cost(video: Path, repeats: int) -> None:
    runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    extract_keyframes(video, KeyframeConfig(camera_motion=False))  # warm caches and imports
    for _ in range(repeats):
        for on in (False, True):
            with tempfile.TemporaryDirectory() as out:
                wall, cpu = time.perf_counter(), cpu_seconds()
                kset = extract_keyframes(video, KeyframeConfig(camera_motion=on), out_dir=Path(out))
                runs[on].append((time.perf_counter() - wall, cpu_seconds() - cpu))
    off_wall, on_wall = (statistics.median(w for w, _ in runs[k]) for k in (False, True))
    off_cpu, on_cpu = (statistics.median(c for _, c in runs[k]) for k in (False, True))
    print(f"  keyframes, camera_motion off: {off_wall:6.2f} s wall {off_cpu:6.2f} s CPU")
    print(f"  keyframes, camera_motion on:  {on_wall:6.2f} s wall {on_cpu:6.2f} s CPU")
    print(
        f"  added: {on_wall / off_wall - 1:+.1%} wall, {on_cpu / off_cpu - 1:+.1%} CPU "
        f"(goal <= +10%); {kset.extra.get('camera_motion')}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", type=Path, help="clip for the cost part [a synthetic 720p one]")
    ap.add_argument("--duration", type=float, default=30.0, help="synthetic clip seconds")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=2, help="accuracy clips per codec")
    ap.add_argument("--no-accuracy", action="store_true", help="only the cost part")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        if not args.no_accuracy:
            print("camera motion labels on clips with known moves:")
            accuracy(tmp, args.seeds)
        video = args.video
        if video is None:
            video = tmp / "bench.mp4"
            print(f"writing a {args.duration:g} s 1280x720 H.264 clip ...", flush=True)
            make_clip(video, args.duration)
        print(f"cost over keyframe extraction ({video.name}, median of {args.repeats}):")
        cost(video, args.repeats)


if __name__ == "__main__":
    main()
