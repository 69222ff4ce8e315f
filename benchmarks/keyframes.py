"""How close is keyframe extraction to the cost of just decoding the video once?

Writes a synthetic clip and measures, in one run and on the same file, with the runs
interleaved:

* the wall time of one plain full PyAV decode (every frame decoded, nothing converted:
  ``for f in container.decode(video=0): pass`` with PyAV's default threading, and again with
  frame threading on, which is what diffcap's reader uses);
* the wall time of ``extract_keyframes`` with the weightless embedder, writing JPEGs;
* the ratio extraction / plain decode (target <= 0.5);
* the wall and CPU time of the command, ``diffcap keyframes CLIP --out DIR`` in a fresh
  process (run store, records, Parquet and all), beside the in-process figure: the
  difference is the command's fixed start-up and finishing cost (target <= 0.3 s);
* peak memory: RSS high-water (VmHWM) of fresh processes that only decode / only extract,
  and the tracemalloc peak of the extraction;
* a per-step profile in CPU seconds: the sampling pass's decoding alone, then with the cut
  signal, then the whole extraction (``--no-profile`` skips it).

The clip (default 60 s) is 1280x720, 30 fps, yuv420p H.264 from libx264 with its *default*
settings (preset medium, crf 23: 3 B-frames with b-pyramid, keyframes every 250 frames plus
scene cuts): 6 shots of 10 s (stripes, checkers, rings, gradients; a fade-in from black and a
fade-out to black), each covered by a fine noise texture that pans at 30 px/s and a moving
square, so every frame changes and the bitrate is realistic (about 2 Mbit/s). Flat synthetic
colours would decode several times faster than real footage and make any per-frame overhead
look huge. Writing it takes 1-2 minutes; ``--keep PATH`` saves it for reuse with ``--video``.

    .venv/bin/python benchmarks/keyframes.py
    .venv/bin/python benchmarks/keyframes.py --keep /tmp/bench.mp4     # then --video it
    .venv/bin/python benchmarks/keyframes.py --duration 120 --repeats 5 --video my.mp4
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from diffcap.cli.main import quiet_blas_threads

# Before numpy loads, as the diffcap command does: the in-process figures then pay what the
# command pays (OpenBLAS's idle threads sleep at once instead of spinning after each call).
quiet_blas_threads()

import av  # noqa: E402

SCENES = 6


def make_clip(path: Path, duration: float) -> None:
    from diffcap.video.synth import Scene, write_video

    each = duration / SCENES
    scenes = [
        Scene(each, fade_in=0.5 if i == 0 else 0.0, fade_out=1.0 if i == SCENES - 1 else 0.0)
        for i in range(SCENES)
    ]
    # x264's defaults (synth's own default is "ultrafast" for quick tests); no gop given, so
    # x264 keeps its keyint 250 and adds keyframes at scene cuts
    write_video(
        path,
        scenes,
        codec="h264",
        size=(1280, 720),
        fps=30,
        detail=True,
        options={"preset": "medium", "crf": "23"},
    )


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads (contention-robust cost)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def timed(fn, *args):
    """(wall seconds, CPU seconds, result) of ``fn(*args)``."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = fn(*args)
    return time.perf_counter() - wall, cpu_seconds() - cpu, result


def plain_decode(path: Path, threaded: bool) -> float:
    start = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if threaded:
            stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            pass
    return time.perf_counter() - start


def extract(path: Path, out: Path) -> tuple[float, int]:
    from diffcap.config import KeyframeConfig
    from diffcap.keyframes import extract_keyframes

    start = time.perf_counter()
    kset = extract_keyframes(path, KeyframeConfig(embedder="weightless"), out_dir=out)
    return time.perf_counter() - start, len(kset.keyframes)


def command(path: Path, out: Path, pycache: Path) -> tuple[float, float]:
    """(wall, CPU seconds) of ``diffcap keyframes PATH --out OUT`` in a fresh process. With
    a bytecode cache (in ``pycache``, as an installed package has one next to its modules):
    a development environment with PYTHONDONTWRITEBYTECODE=1 would compile every module
    again on every command, ~0.15 s that no user pays."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "diffcap", "-q", "keyframes", str(path), "--out", str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _targets(path: Path) -> tuple[list[float], list[str]]:
    """The default pass's target times and kinds for ``path``."""
    from diffcap.config import KeyframeConfig
    from diffcap.keyframes.plan import final_target, plan_targets, plan_window
    from diffcap.video.pyav import PyAVSource

    with PyAVSource(path) as src:
        info = src.info()
    cfg = KeyframeConfig()
    start, end, _ = plan_window(info, cfg)
    return plan_targets(start, end, cfg.interval, final_target(info, start, end), False)


def sampling_decode(path: Path, watched: bool) -> tuple[int, int]:
    """The sampling pass's decoding alone (same reader, same targets, nothing converted),
    with or without the cut signal; returns (frames decoded, cut candidates)."""
    from diffcap.keyframes.changes import ChangeWatch, watched_targets
    from diffcap.keyframes.extract import open_sampler

    times, kinds = _targets(path)
    with open_sampler(path) as src:
        if not watched:
            for _ in src.lazy_frames_at(times):  # type: ignore[attr-defined]
                pass
            return src.frames_decoded, 0  # type: ignore[attr-defined]
        watch = ChangeWatch(src)
        found = sum(k == "change" for _, k in watched_targets(src, times, kinds, watch))
        return src.frames_decoded, found  # type: ignore[attr-defined]


def _extract_to_tmp(path: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        extract(path, Path(tmp))


def profile(path: Path, repeats: int) -> None:
    """Per-step CPU seconds, each step on top of the previous, against one plain decode."""
    steps = [
        ("plain full decode (all frames)", lambda: plain_decode(path, threaded=False)),
        ("sampling decode (pass's reader)", lambda: sampling_decode(path, watched=False)),
        ("  + cut signal on decoded frames", lambda: sampling_decode(path, watched=True)),
        ("  + thumbnails, embedding, JPEGs", lambda: _extract_to_tmp(path)),
    ]
    cpu: dict[str, list[float]] = {name: [] for name, _ in steps}
    info: dict[str, object] = {}
    for _ in range(repeats):
        for name, fn in steps:
            _, c, result = timed(fn)
            cpu[name].append(c)
            info[name] = result
    base = statistics.median(cpu[steps[0][0]])
    print("per-step profile (CPU seconds, all threads, median):")
    for name, _ in steps:
        c = statistics.median(cpu[name])
        extra = info[name]
        note = f"  frames decoded, cut candidates: {extra}" if isinstance(extra, tuple) else ""
        print(f"  {name:36s} {c:6.2f} s  x{c / base:5.2f}{note}")


def child(mode: str, path: Path) -> None:
    """Run one job in this (fresh) process and print its peak RSS as JSON."""
    result: dict[str, float] = {}
    if mode == "extract":
        tracemalloc.start()
        with tempfile.TemporaryDirectory() as tmp:
            result["seconds"], result["keyframes"] = extract(path, Path(tmp))
        result["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    else:
        result["seconds"] = plain_decode(path, threaded=False)
    result["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(result))


def _peak_rss_mb() -> float:
    """This process's RSS high-water mark. VmHWM, not ru_maxrss: ru_maxrss survives exec, so
    a child would report its parent's peak (the clip writer's) whenever that was higher."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def in_child(mode: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--video", type=Path, help="use this file instead of a synthetic clip")
    ap.add_argument("--keep", type=Path, help="also save the synthetic clip here")
    ap.add_argument("--no-profile", action="store_true", help="skip the per-step profile")
    ap.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = args.video or Path(tmp) / "bench.mp4"
        if args.video is None:
            t = time.perf_counter()
            make_clip(path, args.duration)
            print(
                f"wrote {path.name}: {args.duration:g} s 1280x720 H.264 (x264 medium) 30 fps, "
                f"{SCENES} scenes, {path.stat().st_size / 2**20:.1f} MB "
                f"({time.perf_counter() - t:.1f} s)"
            )
            if args.keep:
                shutil.copyfile(path, args.keep)
        print(f"load average at the start: {_load()} (on {_cores()} cores)")
        plain, threaded, runs, cmd = [], [], [], []
        cpu_plain, cpu_runs, cpu_cmd = [], [], []
        keyframes = 0
        command(path, Path(tmp) / "warm-up", Path(tmp) / "pycache")  # writes the bytecode
        for i in range(args.repeats):  # interleaved so load changes hit all three alike
            wall, cpu, _ = timed(plain_decode, path, False)
            plain.append(wall)
            cpu_plain.append(cpu)
            threaded.append(plain_decode(path, threaded=True))
            wall, cpu, (_, keyframes) = timed(extract, path, Path(tmp) / f"out{i}")
            runs.append(wall)
            cpu_runs.append(cpu)
            wall, cpu = command(path, Path(tmp) / f"cmd{i}", Path(tmp) / "pycache")
            cmd.append(wall)
            cpu_cmd.append(cpu)
        mem_extract = in_child("extract", path)
        mem_decode = in_child("decode", path)
        if not args.no_profile:
            profile(path, args.repeats)
    p, th, e = (statistics.median(x) for x in (plain, threaded, runs))
    cp, ce = statistics.median(cpu_plain), statistics.median(cpu_runs)
    c, cc = statistics.median(cmd), statistics.median(cpu_cmd)
    print(f"load average at the end: {_load()} (on {_cores()} cores)")
    print(f"plain decode, PyAV defaults        : {p:6.2f} s  (runs {_fmt(plain)})")
    print(f"plain decode, frame threading on   : {th:6.2f} s  (runs {_fmt(threaded)})")
    print(
        f"extract_keyframes (weightless)     : {e:6.2f} s  (runs {_fmt(runs)}), "
        f"{keyframes} keyframes"
    )
    print(f"ratio extract / plain decode, wall : {e / p:6.2f}   (target <= 0.5)")
    print(f"ratio extract / threaded decode    : {e / th:6.2f}")
    print(f"ratio of CPU seconds (all threads) : {ce / cp:6.2f}   ({ce:.2f} s vs {cp:.2f} s)")
    print(f"diffcap keyframes (command)        : {c:6.2f} s  (runs {_fmt(cmd)}), {cc:.2f} CPU s")
    print(
        f"command - in-process (start-up)    : {c - e:6.2f} s wall, {cc - ce:.2f} CPU s "
        f"(target <= 0.3 s); command / plain decode {c / p:.2f}, / threaded {c / th:.2f}"
    )
    print(
        f"peak RSS: extract {mem_extract['peak_rss_mb']:.0f} MB, decode only "
        f"{mem_decode['peak_rss_mb']:.0f} MB; tracemalloc peak of extract "
        f"{mem_extract['tracemalloc_peak_mb']:.1f} MB"
    )


def _load() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def _cores() -> int:
    return os.cpu_count() or 1


def _fmt(xs: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in xs)


if __name__ == "__main__":
    main()
