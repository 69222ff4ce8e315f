"""Long videos: parallel DiffSW segments against the paper's single chain, side by side.

Generates a long video once (default 2 hours of 64x48 static shots at 1 fps, a new shot every
``--shot`` seconds: about one keyframe per shot) into a cache folder, extracts its keyframes
once, then captions the same keyframes twice against the loopback FaultServer
(tests/support/fault_server.py, in a child process) answering after ``--latency`` seconds:
once with ``caption.chain=single`` and once with ``caption.chain=segments``, each in a fresh
process so each peak RSS is its own. The model's window is ``--context`` tokens, so the
summary is a tree. Prints, per mode: caption wall time, requests, peak RSS; then the ratio
segments / single (the issue's goal: <= 0.1 at concurrency 32).

    .venv/bin/python benchmarks/long_video.py                        # 2 h, 0.05 s latency
    .venv/bin/python benchmarks/long_video.py --hours 0.5 --latency 0.02 --concurrency 16
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # support.fault_server

LAYOUTS = ("solid", "checker", "rings", "hstripes", "vstripes", "gradient")


def make_video(path: Path, seconds: int, shot: int) -> Path:
    from diffcap.video.synth import Scene, write_video

    if path.is_file():
        return path
    scenes = [
        Scene(float(shot), layout=LAYOUTS[i % 6], hue=(i * 0.137) % 1.0, moving=False)
        for i in range(seconds // shot)
    ]
    tmp = path.with_name(f".{path.name}.tmp.mp4")
    write_video(tmp, scenes, size=(64, 48), fps=1)
    os.replace(tmp, path)
    return path


def config(base_url: str, args: argparse.Namespace, chain: str) -> dict:
    return {
        "model": {
            "backend": "openai",
            "api_base": base_url,
            "model": "m",
            "concurrency": args.concurrency,
            "context_tokens": args.context,
            "max_tokens": 64,
            "give_up_after_s": 60,
        },
        "keyframes": {"interval": float(args.interval)},
        "caption": {"chain": chain, "segment_keyframes": args.segment_keyframes},
        "output": {"parquet": False},
    }


def caption(run_dir: str, video: str, cfg_json: str) -> None:
    """Child: caption the (already extracted) keyframes; print wall, requests, peak RSS."""
    import diffcap.captioning.core
    import diffcap.models.openai_backend
    import diffcap.stages.caption  # noqa: F401
    from diffcap.config import RunConfig
    from diffcap.pipeline import run_dataset

    cfg = RunConfig.model_validate(json.loads(cfg_json))
    t0 = time.perf_counter()
    report = run_dataset([video], Path(run_dir), cfg, command="caption", progress=False)
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"wall_s": wall, "requests": report.requests_new, "done": report.done_now}
    print(json.dumps({**out, "peak_rss_mb": rss}))


def serve(latency: float, conn) -> None:
    import signal

    from support.fault_server import FaultServer

    with FaultServer(latency=latency) as srv:
        conn.send(srv.base_url)
        signal.sigwait({signal.SIGTERM, signal.SIGINT})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--shot", type=int, default=6, help="seconds per shot")
    ap.add_argument("--interval", type=int, default=2, help="keyframes.interval")
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--context", type=int, default=8192)
    ap.add_argument("--segment-keyframes", type=int, default=32)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "diffcap-bench")
    args = ap.parse_args()
    seconds = int(args.hours * 3600)
    args.cache.mkdir(parents=True, exist_ok=True)
    video = make_video(args.cache / f"long-{seconds}s-{args.shot}.mp4", seconds, args.shot)

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(args.latency, child), daemon=True)
    server.start()
    base_url = parent.recv()
    work = Path(tempfile.mkdtemp(prefix="long-video-"))
    try:
        results = run_modes(video, base_url, args, work)
    finally:
        server.terminate()
        shutil.rmtree(work, ignore_errors=True)
    single, seg = results["single"], results["segments"]
    print(
        f"video: {seconds / 3600:.1f} h, {results['keyframes']} keyframes; latency "
        f"{args.latency} s; concurrency {args.concurrency}; context {args.context} tokens"
    )
    for name, r in (("single chain", single), ("segments", seg)):
        print(
            f"{name:>13}: {r['wall_s']:8.1f} s  {r['requests']:6d} requests  "
            f"peak RSS {r['peak_rss_mb']:.0f} MB"
        )
    print(f"wall time segments / single: {seg['wall_s'] / single['wall_s']:.3f} (goal <= 0.1)")


def run_modes(video: Path, base_url: str, args: argparse.Namespace, work: Path) -> dict:
    from diffcap.config import RunConfig
    from diffcap.pipeline import run_dataset

    base = work / "keyframes"
    cfg = RunConfig.model_validate(config(base_url, args, "single"))
    t0 = time.perf_counter()
    run_dataset([str(video)], base, cfg, command="keyframes", progress=False)
    kf_s = time.perf_counter() - t0
    (kjson,) = base.rglob("keyframes.json")
    n = len(json.loads(kjson.read_text())["keyframes"])
    print(f"keyframes: {n} in {kf_s:.1f} s (extracted once, shared by both modes)")
    out: dict = {"keyframes": n}
    for chain in ("single", "segments"):
        run_dir = work / chain
        shutil.copytree(base, run_dir)
        cmd = [sys.executable, __file__, "--child", str(run_dir), str(video),
               json.dumps(config(base_url, args, chain))]  # fmt: skip
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        out[chain] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        caption(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main()
