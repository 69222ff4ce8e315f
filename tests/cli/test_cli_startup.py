"""A one-video ``diffcap keyframes`` stays light: no worker process, no heavy imports.

Start-up time itself is measured by ``benchmarks/keyframes.py`` (the command beside the
in-process figure), not here: timings on a shared machine would make a flaky test. What is
tested is what made the command slow, each a fact that holds on any machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq

from diffcap.config import RunConfig
from diffcap.engine.local import LocalExecutor
from diffcap.stages.registry import build_stages
from diffcap.video.synth import Scene, write_video

#: Modules a one-video keyframes command has no use for (pandas came in through pyarrow;
#: popen_spawn_posix is imported when a spawned worker process starts; numpy.ma through
#: np.median; diffcap.models.hub, with urllib.request, through the embedder's check; the
#: captioning stages, their models and prompts through the stage registry and the record
#: builder; the other commands' config sections through diffcap.config).
HEAVY = (
    "pandas",
    "torch",
    "transformers",
    "ray",
    "multiprocessing.popen_spawn_posix",
    "numpy.ma",
    "diffcap.models.hub",
    "diffcap.captioning",
    "diffcap.models",
    "diffcap.prompts",
    "diffcap.stages.caption",
    "diffcap.config.export",
    "diffcap.config.eval",
    "diffcap.config.train",
    "openai",
)

_RUN = """
import json, sys
from diffcap.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    assert not exc.code, exc.code
print(json.dumps([m for m in {heavy!r} if m in sys.modules]))
"""


def test_one_video_command_imports_nothing_heavy_and_starts_no_worker(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "clip.mp4", [Scene(2.0), Scene(2.0)], size=(96, 54), fps=10)
    out = tmp_path / "run"
    args = ["-q", "keyframes", str(clip.path), "--out", str(out), "--workers", "2"]
    done = subprocess.run(
        [sys.executable, "-c", _RUN.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
    # and the run is complete: records, keyframes and the Parquet file (read back here)
    rows = pq.read_table(out / "records.parquet").to_pylist()
    assert [r["video_id"] for r in rows] == ["clip"]
    assert len(rows[0]["keyframes"]) >= 2


def test_cpu_pool_is_a_thread_for_one_video_and_processes_for_more(tmp_path: Path) -> None:
    cfg = RunConfig.model_validate({"engine": {"workers": 3}})
    stage = next(s for s in build_stages(["keyframes"], cfg, tmp_path) if s.resources.cpu_bound)
    ex = LocalExecutor(cfg, progress=False)
    pools = {n: ex.pool(stage, n) for n in (1, 2, 5, None)}
    try:
        assert isinstance(pools[1], ThreadPoolExecutor)
        for n in (2, 5, None):
            assert isinstance(pools[n], ProcessPoolExecutor)
        assert pools[2]._max_workers == 2  # never more processes than videos
        assert pools[5]._max_workers == pools[None]._max_workers == 3
    finally:
        for pool in pools.values():
            pool.shutdown()


_BLAS = """
import os, sys
from diffcap.cli.main import quiet_blas_threads
quiet_blas_threads()
print(os.environ.get("OPENBLAS_THREAD_TIMEOUT"))
"""


def test_entry_point_stops_idle_blas_spinning_unless_the_user_chose(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}

    def run(code: str, **extra: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**env, **extra},
        )
        return done.stdout.strip().splitlines()[-1]

    assert run(_BLAS) == "20"
    assert run(_BLAS, OPENBLAS_THREAD_TIMEOUT="12") == "12"  # the user's value stays
    # numpy already loaded: OpenBLAS read its settings then, so nothing is set (it would lie)
    assert run("import numpy\n" + _BLAS) == "None"
    # and the console entry sets it before the command imports numpy (worker processes
    # inherit the environment)
    clips = [write_video(tmp_path / "c.mp4", [Scene(1.0)], size=(64, 36), fps=5).path]
    probe = (  # as `python -m diffcap` runs it
        "import os, runpy, sys\n"
        "sys.argv = ['diffcap', '-q', 'keyframes', *sys.argv[1:]]\n"
        "try:\n"
        "    runpy.run_module('diffcap', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *map(str, clips), "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert done.stdout.strip().splitlines()[-1] == "20"
