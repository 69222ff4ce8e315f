"""End-to-end throughput of `diffcap run` against a loopback server with a fixed latency.

Generates N tiny videos once (64x64, 3 s, 2 scenes) into a cache folder, starts the
OpenAI-compatible FaultServer (tests/support/servers.py) with ``--latency`` seconds per answer,
runs the whole pipeline (probe, keyframes, captioning, summary, outputs) in-process, and prints
videos/s next to the captioning-only bound ``concurrency / (latency * requests per video)``:
the rate a pipeline with zero overhead would reach with that many requests in flight.

    .venv/bin/python benchmarks/pipeline.py                  # 1,000 videos
    .venv/bin/python benchmarks/pipeline.py --n 100 --latency 0.1 --concurrency 16
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # support.servers


def make_videos(folder: Path, n: int, fps: int) -> list[Path]:
    """Write the videos that are missing (the cache is reused between runs)."""
    from tqdm.auto import tqdm

    from diffcap.video.synth import Scene, write_video

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"bench{i:05d}.mp4" for i in range(n)]
    todo = [p for p in paths if not p.is_file()]
    for p in tqdm(todo, desc="generate", unit="video", disable=not todo):
        hue = (int(p.stem[5:]) * 0.618034) % 1  # golden-ratio steps: distinct, deterministic
        tmp = p.with_name(f".{p.name}.tmp.mp4")
        write_video(
            tmp, [Scene(1.5, hue=hue), Scene(1.5, hue=(hue + 0.5) % 1)], size=(64, 64), fps=fps
        )
        os.replace(tmp, p)
    return paths


def serve(latency: float, conn) -> None:
    """Child process: the loopback server, so its CPU does not share the runner's GIL."""
    import signal

    from support.servers import FaultServer

    with FaultServer(latency=latency, reply=reply) as srv:
        conn.send(srv.base_url)
        signal.sigwait({signal.SIGTERM, signal.SIGINT})


def reply(body) -> str:
    """A distinct, short answer per distinct request (like a real model, cheap to produce)."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]
    return f"A scene changes colour while a square moves right ({digest})."


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="number of videos (default 1000)")
    ap.add_argument("--latency", type=float, default=0.2, help="server seconds per answer")
    ap.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    ap.add_argument("--workers", type=int, default=2, help="keyframe extraction processes")
    ap.add_argument("--mode", choices=["slide", "fast"], default="slide")
    ap.add_argument("--fps", type=int, default=10, help="fps of the generated videos")
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "diffcap-bench",
        help="folder for the generated videos (reused)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the run dir")
    ap.add_argument("--progress", action="store_true", help="show progress bars")
    return ap.parse_args()


def input_folder(args: argparse.Namespace) -> Path:
    """A folder holding exactly the first N cached videos (symlinks)."""
    videos = make_videos(args.cache / f"videos-{args.fps}fps", args.n, args.fps)
    folder = args.cache / f"input-{args.n}-{args.fps}fps"
    if not folder.is_dir():
        tmp = Path(tempfile.mkdtemp(dir=args.cache))
        for p in videos:
            (tmp / p.name).symlink_to(p)
        os.replace(tmp, folder)
    return folder


def timed_run(
    args: argparse.Namespace, folder: Path, run_dir: Path, *, engine: str = "local"
) -> tuple[object, float]:
    """Start the server process, run the pipeline, stop the server: (report, wall seconds)."""
    from diffcap.config.resolve import resolve_config
    from diffcap.pipeline.runner import run_dataset

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(
        target=serve, args=(args.latency, child), daemon=True
    )
    server.start()
    try:
        if not parent.poll(60):
            raise RuntimeError("the loopback server did not start (see its output above)")
        overrides = {
            "model.api_base": parent.recv(),
            "model.model": "bench",
            "model.api_key": "x",
            "model.concurrency": args.concurrency,
            "keyframes.embedder": "weightless",
            "engine.workers": args.workers,
            "caption.mode": args.mode,
            "engine.engine": engine,
        }
        cfg = resolve_config(None, None, overrides)
        t0 = time.perf_counter()
        report = run_dataset([str(folder)], run_dir, cfg, progress=args.progress)
        return report, time.perf_counter() - t0
    finally:
        server.terminate()
        server.join(10)


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    folder = input_folder(args)
    run_dir = Path(tempfile.mkdtemp(prefix="bench-run-", dir=args.cache))
    report, wall = timed_run(args, folder, run_dir)
    done = report.counts["done"]
    per_video = report.requests_new / max(done, 1)
    bound = args.concurrency / (args.latency * per_video)
    rate = done / wall
    print(
        f"videos: {done} done of {args.n} ({report.counts['failed']} failed), "
        f"{report.keyframes} keyframes, {report.requests_new} requests "
        f"({per_video:.2f} per video)"
    )
    print(
        f"setup: latency {args.latency:g} s, concurrency {args.concurrency}, "
        f"workers {args.workers}, mode {args.mode}, {os.cpu_count()} CPUs"
    )
    print(f"{'end-to-end':>28}: {rate:8.2f} videos/s  ({wall:.1f} s wall)")
    print(
        f"{'captioning-only bound':>28}: {bound:8.2f} videos/s  "
        f"(= {args.concurrency} / ({args.latency:g} s x {per_video:.2f} requests))"
    )
    print(f"{'ratio to the bound':>28}: {rate / bound:8.2f}")
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
