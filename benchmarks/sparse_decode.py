"""Manual benchmark (not collected by pytest): sparse sampling vs one plain PyAV decode.

    .venv/bin/python benchmarks/sparse_decode.py [VIDEO] [--every 2] [--rounds 3]

Without VIDEO it writes a 60 s 1280x720 30 fps H.264 file (x264 ``veryfast``: B-frames,
keyframes every 250 frames plus scene cuts; a panning texture for a realistic bitrate) to a
temp dir first (about a minute). Prints best-of-N wall time and process CPU time (all
threads) per method, and the ratio to the plain decode; checks that every diffcap mode
returns the same frames (times and pixels). The last row is the keyframe extractor's way:
lazy frames, only a thumbnail converted per sample, slice threads only.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av

from diffcap.video.pyav import PyAVSource
from diffcap.video.synth import default_scenes, write_video


def plain(path: Path, every: float) -> list:
    with av.open(str(path)) as c:
        for _ in c.decode(video=0):
            pass
    return []


def threaded(path: Path, every: float) -> list:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for _ in c.decode(s):
            pass
    return []


def seek_each(path: Path, every: float) -> list:
    """The naive way: a seek per sample, then decode up to the target."""
    out = []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        duration = float(s.duration * s.time_base)
        k = 0
        while k * every < duration:
            c.seek(int(k * every / s.time_base), stream=s)
            for f in c.decode(s):
                if f.time >= k * every - 1e-6:
                    out.append((round(f.time, 6), f.to_ndarray(format="rgb24").tobytes()))
                    break
            k += 1
    return out


def diffcap(**kw) -> Callable[[Path, float], list]:
    def run(path: Path, every: float) -> list:
        with PyAVSource(path, **kw) as src:
            return [(round(f.time, 6), f.image.tobytes()) for f in src.frames(every=every)]

    return run


def lazy_thumbs(path: Path, every: float) -> list:
    """What keyframe extraction does per candidate: 256x256 thumbnails straight from YUV,
    slice threads only (diffcap.keyframes.extract.SAMPLING_THREADS)."""
    with PyAVSource(path, threads="SLICE") as src:
        duration = src.info().duration
        times = [k * every for k in range(int(duration / every) + 1) if k * every < duration]
        return [(round(f.time, 6), f.resized((256, 256))) for f in src.lazy_frames_at(times)]


METHODS = {
    "plain PyAV full decode (baseline)": plain,
    "PyAV full decode, thread_type AUTO": threaded,
    "naive seek per sample": seek_each,
    "diffcap sequential only": diffcap(min_seek_skip=1e9, skip_nonref=False),
    "diffcap + index seeks": diffcap(skip_nonref=False),
    "diffcap + seeks + skip non-ref (default)": diffcap(),
    "diffcap default, slice threads only": diffcap(threads="SLICE"),
    "lazy frames, 256px thumbnails, slice thr.": lazy_thumbs,
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("video", nargs="?", type=Path)
    ap.add_argument("--every", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    path = args.video
    if path is None:
        path = Path(tempfile.mkdtemp()) / "bench720.mp4"
        write_video(
            path,
            default_scenes(6, 60.0),
            size=(1280, 720),
            fps=30,
            detail=True,
            options={"preset": "veryfast"},
        )
    wall = dict.fromkeys(METHODS, float("inf"))
    cpu = dict.fromkeys(METHODS, float("inf"))
    results = {}
    for _ in range(args.rounds):  # interleaved rounds: load changes hit every method alike
        for name, fn in METHODS.items():
            t, c = time.perf_counter(), time.process_time()
            out = fn(path, args.every)
            wall[name] = min(wall[name], time.perf_counter() - t)
            cpu[name] = min(cpu[name], time.process_time() - c)
            if name.startswith("diffcap"):
                results[name] = out
    base_w, base_c = wall[next(iter(METHODS))], cpu[next(iter(METHODS))]
    print(f"{path} every {args.every}s, best of {args.rounds}")
    for name in METHODS:
        print(
            f"{name:42s} wall {wall[name]:6.2f}s ({wall[name] / base_w:4.2f}x)  "
            f"cpu {cpu[name]:6.2f}s ({cpu[name] / base_c:4.2f}x)"
        )
    same = len({hash(tuple(map(hash, map(tuple, r)))) for r in results.values()}) == 1
    print("diffcap modes return identical frames:", same)


if __name__ == "__main__":
    main()
