"""Where does a one-clip ``diffcap keyframes`` / ``diffcap caption`` spend its time?

Runs each command on one short clip (default: 6 s, 640x360 H.264, two shots) in fresh
processes, ``--repeats`` times, interleaved, and prints the median CPU seconds (all threads)
of each part, measured inside the process (a small harness runs the real CLI entry point with
timers around the parts; the timers are exclusive: time in a nested part counts once, for
the inner one):

* interpreter: the CPU the process had used when the harness began: Python's own start-up
  and the harness's few stdlib imports (argparse, json, subprocess, threading...: most of
  which diffcap imports too, so they are not counted twice under imports);
* imports: every module import (also those made lazily during the run: pyarrow for the
  Parquet output, PIL's plugins, the openai SDK...), timed around the import system's loaders;
  the dozen largest top-level packages are listed below it (diffcap by subpackage);
* config: parsing the options into a RunConfig (``config_from_params``);
* open+probe: opening the video and reading its facts (``PyAVSource()``, ``info()``);
* decode: the sampling pass's decoding (``PyAVSource._next_frame``); camera motion and the cut
  signal (callbacks on decoded frames) and RGB conversion / resizing are their own parts;
* embed: the image embedder; write: the keyframe JPEGs;
* model calls: the client's work on requests and answers (caption only: building the
  bodies with their images, parsing answers; the SDK's async sending counts as other), the
  loopback FaultServer of tests/support (a real HTTP server) answering at once;
* other: the rest inside the process (run store, records, Parquet rows, thread pools, report);
* exit: interpreter teardown (the parent's CPU of the child minus what the child saw).

Printed beside them: "outside decoding and embedding" (the total less decode and embed: the
issue's goal, <= 0.3 s) and the fixed cost (the total less all per-frame work: decode, camera
motion, cut signal, conversion, embed, JPEGs), the median wall seconds of the command, and
the load average. Then the floor: a fresh process that only imports what the command cannot
do without (numpy, av, PIL; for caption also the openai SDK), interpreter start-up and exit
included, run interleaved with the commands; "outside decoding and embedding" less the floor
is what diffcap's own code costs. Python bytecode is cached in a temporary folder (as an
installed package's is), after a warm-up run.

    .venv/bin/python benchmarks/startup.py
    .venv/bin/python benchmarks/startup.py --repeats 7 --video clip.mp4 --commands keyframes
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PARTS = (
    "interpreter",
    "imports",
    "config",
    "open+probe",
    "decode",
    "camera motion",
    "cut signal",
    "convert",
    "embed",
    "write",
    "model calls",
    "other",
    "exit",
)
PER_FRAME = ("decode", "camera motion", "cut signal", "convert", "embed", "write")


def _cpu(who: int = resource.RUSAGE_SELF) -> float:
    ru = resource.getrusage(who)
    return ru.ru_utime + ru.ru_stime


class Clock:
    """Exclusive CPU timers per part, per thread (``time.thread_time``)."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)
        self._local = threading.local()
        self._lock = threading.Lock()

    def _add(self, part: str, seconds: float) -> None:
        with self._lock:
            self.spent[part] += seconds

    def enter(self, part: str) -> None:
        stack = self._local.__dict__.setdefault("stack", [])
        now = time.thread_time()
        if stack:
            self._add(stack[-1][0], now - stack[-1][1])
        stack.append([part, now])

    def leave(self) -> None:
        stack = self._local.stack
        now = time.thread_time()
        part, start = stack.pop()
        self._add(part, now - start)
        if stack:
            stack[-1][1] = now

    def wrap(self, owner: Any, name: str, part: str) -> None:
        fn: Callable[..., Any] = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            self.enter(part)
            try:
                return fn(*args, **kwargs)
            finally:
                self.leave()

        setattr(owner, name, timed)


class _TimedLoader:
    def __init__(self, loader: Any, clock: Clock, name: str) -> None:
        self._loader, self._clock = loader, clock
        parts = name.split(".")
        top = ".".join(parts[:2]) if parts[0] == "diffcap" else parts[0]
        self._part = f"import {top}"  # summed into "imports", and listed by package

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: Any) -> Any:
        self._clock.enter(self._part)
        try:
            return self._loader.create_module(spec)
        finally:
            self._clock.leave()

    def exec_module(self, module: Any) -> None:
        self._clock.enter(self._part)
        try:
            self._loader.exec_module(module)
        finally:
            self._clock.leave()


class _TimedFinder:
    """First on ``sys.meta_path``: the spec the other finders give, its loader timed."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _TimedLoader(spec.loader, self.clock, name)
                return spec
        return None


def _instrument(clock: Clock) -> None:
    import diffcap.cli.caption as cap
    import diffcap.cli.keyframes as kf
    from diffcap.embed.weightless import WeightlessEmbedder
    from diffcap.keyframes.changes import ChangeWatch
    from diffcap.keyframes.writer import ImageWriter
    from diffcap.video.lazyframe import LazyFrame
    from diffcap.video.motion import MotionProbe
    from diffcap.video.pyav import PyAVSource

    for module in (cap, kf):
        clock.wrap(module, "config_from_params", "config")
    clock.wrap(PyAVSource, "__init__", "open+probe")
    clock.wrap(PyAVSource, "info", "open+probe")
    clock.wrap(PyAVSource, "_next_frame", "decode")
    clock.wrap(MotionProbe, "__call__", "camera motion")
    clock.wrap(ChangeWatch, "__call__", "cut signal")
    for name in ("resized", "capped", "to_frame"):
        clock.wrap(LazyFrame, name, "convert")
    clock.wrap(WeightlessEmbedder, "embed_images", "embed")
    clock.wrap(ImageWriter, "_save", "write")


def _instrument_models(clock: Clock) -> None:
    """The client side of model calls, once the backend module is loaded (by the run)."""
    from diffcap.models.openai_backend import OpenAIBackend

    for name in ("build_body", "build_payload", "data_url", "_parse"):  # (the sync parts)
        clock.wrap(OpenAIBackend, name, "model calls")


def child(argv: list[str]) -> None:
    """In the fresh process: the real CLI, timed by part; prints the parts as JSON."""
    interpreter = _cpu()
    clock = Clock()
    sys.meta_path.insert(0, _TimedFinder(clock))  # type: ignore[arg-type]
    from diffcap.cli.main import main, quiet_blas_threads

    quiet_blas_threads()  # as main() does first; the timers import numpy before main() runs
    _instrument(clock)
    if "caption" in argv:
        _instrument_models(clock)  # (its import is then counted by the finder too)
    sys.argv = ["diffcap", *argv]
    try:
        main()  # as the console script calls it (argv from sys.argv)
    except SystemExit as exc:
        if exc.code:
            raise
    spent = dict(clock.spent)
    spent["imports"] = sum(v for k, v in spent.items() if k.startswith("import "))
    spent["interpreter"] = interpreter
    spent["seen"] = _cpu()
    print("\n" + json.dumps(spent))


def _env(pycache: Path) -> dict[str, str]:
    """This environment, with Python bytecode cached in ``pycache`` (as an installed
    package's is, even where PYTHONDONTWRITEBYTECODE is set)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def run_child(argv: list[str], pycache: Path) -> dict[str, float]:
    """One fresh process: its parts (see module), with ``other``, ``exit`` and ``total``."""
    env = _env(pycache)
    env.setdefault("HF_HUB_OFFLINE", "1")
    before = _cpu(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--child", *argv],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    wall = time.perf_counter() - start
    total = _cpu(resource.RUSAGE_CHILDREN) - before
    parts = json.loads(done.stdout.strip().splitlines()[-1])
    seen = parts.pop("seen")
    named = sum(v for k, v in parts.items() if k in PARTS and k != "interpreter")
    parts["other"] = seen - parts["interpreter"] - named
    parts["exit"] = total - seen
    parts["total"], parts["wall"] = total, wall
    return parts


#: What a command cannot do without, per command: a process that only imports these (the
#: interpreter, its start-up and exit included) is the floor no diffcap code can go under.
FLOOR = {
    "keyframes": "import numpy, av, PIL.Image",
    "caption": "import numpy, av, PIL.Image, openai",
}


def run_floor(code: str, pycache: Path) -> float:
    """CPU seconds of one fresh process running ``code`` (same environment as the commands:
    the bytecode cache, and OpenBLAS's spin set as diffcap's entry point sets it)."""
    from diffcap.cli.main import BLAS_SPIN

    env = _env(pycache)
    env.setdefault(*BLAS_SPIN)
    before = _cpu(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    return _cpu(resource.RUSAGE_CHILDREN) - before


def _commands(which: list[str], clip: Path, tmp: Path, api_base: str | None) -> dict[str, Any]:
    def keyframes(i: int) -> list[str]:
        return ["-q", "keyframes", str(clip), "--out", str(tmp / f"kf{i}")]

    def caption(i: int) -> list[str]:
        out = tmp / f"cap{i}" / "captions.jsonl"
        model = ["--api-base", str(api_base), "--model", "bench", "--api-key", "sk-bench"]
        return ["-q", "caption", str(clip), "--out", str(out), *model]

    table = {"keyframes": keyframes, "caption": caption}
    return {name: table[name] for name in which}


def report(name: str, runs: list[dict[str, float]], floor: list[float]) -> None:
    med = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in (*PARTS, "total", "wall")}
    print(f"diffcap {name} (median of {len(runs)} fresh processes, CPU seconds, all threads):")
    for part in PARTS:
        if med[part] >= 0.0005 or part in ("decode", "embed"):
            print(f"  {part:14s} {med[part]:6.3f}")
    packages = {k for r in runs for k in r if k.startswith("import ")}
    by_package = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in packages}
    top = sorted(by_package.items(), key=lambda kv: -kv[1])[:12]
    print("    " + ", ".join(f"{k[7:]} {v:.3f}" for k, v in top))
    totals = [r["total"] for r in runs]
    outside = [r["total"] - r.get("decode", 0.0) - r.get("embed", 0.0) for r in runs]
    fixed = [r["total"] - sum(r.get(p, 0.0) for p in PER_FRAME) for r in runs]
    print(f"  {'total':14s} {statistics.median(totals):6.3f}   wall {med['wall']:.2f} s")
    print(
        f"  outside decoding and embedding: {statistics.median(outside):.3f} CPU s "
        f"(goal <= 0.3); fixed (no per-frame work): {statistics.median(fixed):.3f} CPU s"
    )
    low = statistics.median(floor)
    print(
        f"  floor: a process that only runs `{FLOOR[name]}`: {low:.3f} CPU s; "
        f"the rest, diffcap's own (outside decoding and embedding): "
        f"{statistics.median(outside) - low:.3f} CPU s"
    )


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _clip(path: Path) -> None:
    from diffcap.video.synth import Scene, write_video

    write_video(path, [Scene(3.0), Scene(3.0)], codec="h264", size=(640, 360), fps=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", type=Path, help="the clip [a synthetic 6 s 640x360 one]")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--commands", default="keyframes,caption", help="comma-separated")
    ap.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.child)
        return
    sys.path.insert(0, str(ROOT / "tests"))  # support.fault_server
    from support.fault_server import FaultServer

    with tempfile.TemporaryDirectory() as tmp_dir, FaultServer() as srv:
        tmp = Path(tmp_dir)
        clip = args.video or tmp / "clip.mp4"
        if args.video is None:
            _clip(clip)
        commands = _commands(args.commands.split(","), clip, tmp, srv.base_url)
        pycache = tmp / "pycache"
        for name, argv in commands.items():  # warm-up: bytecode written, caches filled
            run_child(argv(-1 - len(name)), pycache)
            run_floor(FLOOR[name], pycache)
        print(f"load average at the start: {_load()} (on {os.cpu_count()} cores)")
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in commands}
        floors: dict[str, list[float]] = {name: [] for name in commands}
        for i in range(args.repeats):  # interleaved: a change of load hits all alike
            for name, argv in commands.items():
                runs[name].append(run_child(argv(i), pycache))
                floors[name].append(run_floor(FLOOR[name], pycache))
        print(f"load average at the end: {_load()}")
    for name, measured in runs.items():
        report(name, measured, floors[name])


if __name__ == "__main__":
    main()
