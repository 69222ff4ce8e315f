"""How right is the measured camera motion, and what does it add to keyframe extraction?

Accuracy: clips with known camera moves (a window moving over a large random-texture image,
:mod:`diffcap.video.camsynth`: pans and tilts at several speeds, zooms, a roll, a static
shot with a subject crossing it, handheld shake; 2 s each), encoded with H.264 (x264's
defaults: B-frames, b-pyramid, 3 references), MPEG-4 part 2 and HEVC (no motion vectors
exported: the flow fallback). Keyframes are forced every second (``threshold=1.0``); every
interval inside one move is judged. Printed: right / judged per codec and overall, and how
many intervals got no label (no inter frame decoded in them).

Cost: ``extract_keyframes`` with the default settings (weightless embedder, JPEGs written)
with ``camera_motion`` off and on, on one clip: 1280x720 30 fps H.264 at x264's default
settings, a fine texture panning across shots like benchmarks/keyframes.py's (or
``--video``). The runs come in pairs, in alternating order (off/on, then on/off, ...), so a
change of load hits both alike; each pair gives the ratio of the process's CPU seconds (all
threads, ``getrusage``), and the added share printed is the median of those ratios (goal <=
10%), beside the median wall and CPU seconds of each. A second, load-robust figure: the CPU
time the motion probe itself spends (its thread's, timed around every call) over the CPU of
the extraction without it; the rest of the added cost is the decoder exporting the vectors.
The load average is printed at the start and at the end: on a busy machine the pairs spread.

    .venv/bin/python benchmarks/camera_motion.py
    .venv/bin/python benchmarks/camera_motion.py --duration 60 --repeats 5 --video clip.mp4
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from diffcap.config import KeyframeConfig
from diffcap.keyframes import extract, extract_keyframes
from diffcap.video.camsynth import Move, write_camera_clip
from diffcap.video.motion import MotionProbe
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


class TimedProbe(MotionProbe):
    """The probe, with the CPU seconds of its calls (on the thread that decodes) summed."""

    spent = 0.0

    def __call__(self, frame: Any) -> None:
        t = time.thread_time()
        try:
            super().__call__(frame)
        finally:
            TimedProbe.spent += time.thread_time() - t


def _extract(video: Path, on: bool) -> tuple[float, float, dict | None]:
    with tempfile.TemporaryDirectory() as out:
        wall, cpu = time.perf_counter(), cpu_seconds()
        kset = extract_keyframes(video, KeyframeConfig(camera_motion=on), out_dir=Path(out))
        return time.perf_counter() - wall, cpu_seconds() - cpu, kset.extra.get("camera_motion")


def cost(video: Path, repeats: int) -> None:
    print(f"  load average at the start: {_load()} (on {os.cpu_count()} cores)")
    runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    ratios, probe_share = [], []
    extract.MotionProbe = TimedProbe  # type: ignore[misc]  # (the same probe, timed)
    _extract(video, False), _extract(video, True)  # warm caches and imports
    facts = None
    for i in range(repeats):
        pair: dict[bool, float] = {}
        for on in (False, True) if i % 2 == 0 else (True, False):
            TimedProbe.spent = 0.0
            wall, cpu, seen = _extract(video, on)
            runs[on].append((wall, cpu))
            pair[on] = cpu
            facts = seen or facts
            if on:
                spent = TimedProbe.spent
        ratios.append(pair[True] / pair[False])
        probe_share.append(spent / pair[False])
    off_wall, on_wall = (statistics.median(w for w, _ in runs[k]) for k in (False, True))
    off_cpu, on_cpu = (statistics.median(c for _, c in runs[k]) for k in (False, True))
    print(f"  keyframes, camera_motion off: {off_wall:6.2f} s wall {off_cpu:6.2f} s CPU")
    print(f"  keyframes, camera_motion on:  {on_wall:6.2f} s wall {on_cpu:6.2f} s CPU")
    print(
        f"  added CPU, median of {repeats} interleaved pairs: "
        f"{statistics.median(ratios) - 1:+.1%} (goal <= +10%; pairs "
        f"{min(ratios) - 1:+.1%} .. {max(ratios) - 1:+.1%}); wall {on_wall / off_wall - 1:+.1%}"
    )
    print(
        f"  the probe's own CPU: {statistics.median(probe_share):.1%} of the extraction's "
        f"(pairs {min(probe_share):.1%} .. {max(probe_share):.1%}); {facts}"
    )
    print(f"  load average at the end: {_load()}")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", type=Path, help="clip for the cost part [a synthetic 720p one]")
    ap.add_argument("--duration", type=float, default=30.0, help="synthetic clip seconds")
    ap.add_argument("--repeats", type=int, default=7, help="interleaved off/on pairs")
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
        print(f"cost over keyframe extraction ({video.name}, {args.repeats} pairs):")
        cost(video, args.repeats)


if __name__ == "__main__":
    main()
