"""Live HLS captioning: caption delay and memory over a long real-time stream.

FFmpeg plays a generated video in real time (``-re``) into a live HLS playlist (segments of
``--segment`` seconds, EXT-X-PROGRAM-DATE-TIME on), Python's http.server serves it on
loopback, and ``caption_live`` captions it from the first segment against the loopback
FaultServer (tests/support/fault_server.py) answering every request after ``--latency``
seconds. Prints, over the whole stream: the caption delay p50/p95/max from a frame's arrival
(decoded here) to its caption line written, the same from the frame's program date-time (when
the broadcaster stamped it: includes the segment's own length), captions / skipped, and the
process's RSS sampled every 10 s (after the first minute and at the end, and the peak).
Goal (issue 21): p95 <= segment + latency + 1 s, RSS flat.

    .venv/bin/python benchmarks/live.py                          # 10 minutes, 1 s latency
    .venv/bin/python benchmarks/live.py --minutes 2 --latency 0.5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # support.fault_server, support.live


def make_video(path: Path, seconds: int, shot: float) -> Path:
    from diffcap.video.synth import Scene, write_video

    if path.is_file():
        return path
    layouts = ("checker", "rings", "hstripes", "vstripes", "gradient")
    scenes = [
        Scene(shot, layout=layouts[i % 5], hue=(i * 0.137) % 1.0)
        for i in range(int(seconds // shot))
    ]
    tmp = path.with_name(f".{path.name}.tmp.mp4")
    write_video(tmp, scenes, size=(160, 96), fps=10)
    os.replace(tmp, path)
    return path


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def run(args: argparse.Namespace, video: Path, work: Path) -> dict:
    from diffcap.live import LiveOptions, caption_live
    from support.fault_server import FaultServer
    from support.live import HLSStream, model_cfg

    written: list[tuple[float, dict]] = []
    rss: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        t0 = time.monotonic()
        while not done.wait(10):
            rss.append((time.monotonic() - t0, rss_mb()))

    with FaultServer(latency=args.latency) as srv, HLSStream(work, video) as hls:
        cfg = model_cfg(srv.base_url)
        opts = LiveOptions(
            interval=args.interval, from_start=True, summary_every_s=300, stall_s=15, queue=1
        )
        threading.Thread(target=sample, daemon=True).start()
        t0 = time.monotonic()
        report = caption_live(
            hls.url,
            work / "live.jsonl",
            cfg,
            opts,
            on_line=lambda x: written.append((time.time(), x)),
        )
        wall = time.monotonic() - t0
        done.set()
    caps = [(t, x) for t, x in written if x["type"] == "caption"]
    delays = [x["delay_s"] for _, x in caps]
    from_pdt = [
        t - datetime.fromisoformat(x["wall"]).timestamp()
        for t, x in caps
        if x["wall_source"] == "program_date_time"
    ]
    return {
        "stream_s": wall,
        "reason": report.reason,
        "captions": len(caps),
        "skipped": report.skipped,
        "summaries": report.summaries,
        "delay_p50": pct(delays, 0.5),
        "delay_p95": pct(delays, 0.95),
        "delay_max": max(delays, default=float("nan")),
        "pdt_p50": pct(from_pdt, 0.5),
        "pdt_p95": pct(from_pdt, 0.95),
        "rss_after_1min": next((m for t, m in rss if t >= 60), rss[0][1] if rss else rss_mb()),
        "rss_end": rss[-1][1] if rss else rss_mb(),
        "rss_peak": max((m for _, m in rss), default=rss_mb()),
        "rss_median": statistics.median(m for _, m in rss) if rss else rss_mb(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the live stream")
    ap.add_argument("--latency", type=float, default=1.0, help="model latency (s)")
    ap.add_argument("--interval", type=float, default=2.0, help="candidate every N s")
    ap.add_argument("--shot", type=float, default=6.0, help="seconds per generated shot")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "diffcap-bench")
    args = ap.parse_args()
    if shutil.which("ffmpeg") is None:
        sys.exit("benchmarks/live.py needs the ffmpeg program (apt-get install ffmpeg)")
    seconds = int(args.minutes * 60)
    args.cache.mkdir(parents=True, exist_ok=True)
    video = make_video(args.cache / f"live-{seconds}s-{args.shot:g}.mp4", seconds, args.shot)
    segment = 1.0  # support.live.HLSStream: -hls_time 1 with 1 s GOPs
    with tempfile.TemporaryDirectory() as tmp:
        r = run(args, video, Path(tmp))
    print(json.dumps(r))
    goal = segment + args.latency + 1.0
    print(
        f"live HLS {r['stream_s']:.0f} s ({args.minutes:g} min stream, segments ~{segment:g} s, "
        f"model latency {args.latency:g} s): {r['captions']} captions, {r['skipped']} skipped, "
        f"{r['summaries']} rolling summaries; ended: {r['reason']}"
    )
    print(
        f"delay arrival->caption p50 {r['delay_p50']:.2f} s, p95 {r['delay_p95']:.2f} s, "
        f"max {r['delay_max']:.2f} s; program-date-time->caption p50 {r['pdt_p50']:.2f} s, "
        f"p95 {r['pdt_p95']:.2f} s (goal p95 <= {goal:.1f} s: "
        f"{'met' if r['delay_p95'] <= goal else 'NOT met'})"
    )
    print(
        f"RSS after 1 min {r['rss_after_1min']:.0f} MB, median {r['rss_median']:.0f} MB, "
        f"end {r['rss_end']:.0f} MB, peak {r['rss_peak']:.0f} MB"
    )


if __name__ == "__main__":
    main()
