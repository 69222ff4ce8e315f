"""Ray at scale, measured side by side in one run on this machine.

1. Throughput: the same workload (N generated videos, the loopback OpenAI-compatible server
   with a fixed latency, the whole pipeline) through the local executor and through Ray
   (a local, loopback-only Ray), in videos/s, with their ratio.
2. Driver memory: the peak RSS of the driver process (each size in a fresh subprocess) for
   manifests of 100k and 1M rows taken through registration, streaming out of the run
   store, the Ray spool and a Ray Data pass of a pass-through stage back to the driver,
   which commits every row. The second must not be ten times the first.

    .venv/bin/python benchmarks/ray_scale.py                      # 200 videos; 100k and 1M rows
    .venv/bin/python benchmarks/ray_scale.py --n 50 --rows 10000 100000
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def throughput(args: argparse.Namespace) -> dict[str, float]:
    import pipeline as bench  # benchmarks/pipeline.py: videos, server, timed run

    ns = argparse.Namespace(
        n=args.n,
        latency=args.latency,
        concurrency=args.concurrency,
        workers=2,
        mode="slide",
        fps=10,
        cache=args.cache,
        keep=False,
        progress=False,
    )
    folder = bench.input_folder(ns)
    rates = {}
    # "ray" includes starting the local Ray (once per process, as for a CLI run);
    # "ray warm" is the same run with Ray already up, as on a running cluster.
    for label, engine in (("local", "local"), ("ray", "ray"), ("ray warm", "ray")):
        run_dir = Path(tempfile.mkdtemp(prefix=f"ray-scale-{engine}-", dir=args.cache))
        report, wall = bench.timed_run(ns, folder, run_dir, engine=engine)
        rates[label] = report.counts["done"] / wall
        print(
            f"{label:>8}: {report.counts['done']} videos in {wall:6.1f} s = "
            f"{rates[label]:6.2f} videos/s ({report.requests_new} requests)"
        )
    return rates


def driver_memory(rows: int, cache: Path) -> dict[str, float]:
    """Run :func:`_memory_child` in a fresh interpreter; its peak RSS in MiB and seconds."""
    out = subprocess.run(
        [sys.executable, __file__, "--child-rows", str(rows), "--cache", str(cache)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _memory_child(rows: int, cache: Path) -> None:
    from diffcap.config import RunConfig
    from diffcap.engine.control import RunControl
    from diffcap.engine.pipeline import Pipeline
    from diffcap.engine.ray_executor import RayExecutor
    from diffcap.pipeline.runner import register_inputs
    from diffcap.store import RunStore

    work = Path(tempfile.mkdtemp(prefix=f"ray-mem-{rows}-", dir=cache))
    manifest = work / "manifest.jsonl"
    with manifest.open("w") as f:  # written here, streamed: the manifest is not held
        for i in range(rows):
            f.write(json.dumps({"path": f"/data/shard{i % 997}/video{i:08d}.mp4"}) + "\n")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    cfg = RunConfig.model_validate(
        {"engine": {"engine": "ray", "workers": 2, "ray_rows_per_block": 2000}}
    )
    store = RunStore.open(work / "run.sqlite")
    register_inputs(store, [str(manifest)], cfg)
    t_reg = time.perf_counter() - t0
    reg_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # before ray is imported
    pipe = Pipeline([_pass_stage()(cfg, work)])
    seen = [0]

    def commit(row) -> None:
        row.status, row.stage, row.reason = "filtered", "bench", "bench"
        store.commit_row(row)
        seen[0] += 1

    pipe.run(RayExecutor(cfg, progress=False), store, RunControl(store, cfg.engine), commit)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "rows": rows,
                "committed": seen[0],
                "peak_mib": peak / 1024,
                "baseline_mib": base / 1024,
                "register_peak_mib": reg_peak / 1024,
                "register_s": t_reg,
                "total_s": time.perf_counter() - t0,
            }
        )
    )


def _pass_stage():
    from diffcap.engine.stage import CpuStage, Resources

    class Pass(CpuStage):
        name = "pass"

        @property
        def resources(self) -> Resources:
            return Resources(cpus=0, concurrency=2000)

        def process_row(self, row):
            return row

    return Pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="videos for the throughput run")
    ap.add_argument("--latency", type=float, default=0.2, help="server seconds per answer")
    ap.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    ap.add_argument("--rows", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "diffcap-bench")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--child-rows", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.WARNING)
    if args.child_rows:
        _memory_child(args.child_rows, args.cache)
        return
    if not args.skip_throughput:
        rates = throughput(args)
        print(
            f"ray / local: {rates['ray'] / rates['local']:.2f} (with the Ray start), "
            f"{rates['ray warm'] / rates['local']:.2f} (Ray already up)"
        )
    mem = [driver_memory(n, args.cache) for n in args.rows]
    for m in mem:
        print(
            f"driver peak RSS for {m['rows']:>9,} rows: {m['peak_mib']:8.1f} MiB "
            f"(registration {m['register_s']:.1f} s and {m['register_peak_mib']:.0f} MiB, "
            f"all {m['total_s']:.1f} s, "
            f"{m['committed']:,} rows back)"
        )
    if len(mem) >= 2:
        print(
            f"peak ratio {mem[-1]['rows']:,} / {mem[0]['rows']:,} rows: "
            f"{mem[-1]['peak_mib'] / mem[0]['peak_mib']:.2f}"
        )


if __name__ == "__main__":
    main()
