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
#: popen_spawn_posix is imported when a spawned worker process starts).
HEAVY = ("pandas", "torch", "transformers", "ray", "multiprocessing.popen_spawn_posix")

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
