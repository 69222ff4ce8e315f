"""The Ray poison-video limit, end to end: a real ``diffcap run`` process on a real local Ray
whose worker dies (``os._exit(1)``) on every video named ``poison*``."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from diffcap.engine.ray_actor import CRASH_HOOK_ENV
from diffcap.video.synth import default_scenes, write_video
from support.servers import _fault_server_session, fault_server  # noqa: F401 - fixtures

pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("poison_batch")
    for i, name in enumerate(["good0", "poison", "good1"]):
        write_video(folder / f"{name}.mp4", default_scenes(2, 2.0), size=(64 + 16 * i, 48), fps=5)
    return folder


def _run(srv, videos: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")]),
        CRASH_HOOK_ENV: "poison*",
    }
    args = [
        sys.executable, "-m", "diffcap", "run", str(videos), "--out", str(out),
        "--engine", "ray", "--api-base", srv.base_url, "--model", "tiny", "--api-key", "k",
        "--workers", "2", "--set", "engine.ray_max_retries=0", "--set", "keyframes.interval=1.0",
        "--no-progress", *extra,
    ]  # fmt: skip
    # The watchdog and the per-video limit keep the command itself from hanging; the
    # timeout here only turns a regression into a failure instead of a stuck suite.
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=240, cwd=ROOT)


def _videos(out: Path) -> dict[str, dict]:
    with sqlite3.connect(out / "run.sqlite") as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT source, status, stage, reason, error, attempts FROM videos")
        return {Path(r["source"]).stem: dict(r) for r in rows}


@pytest.mark.timeout(900)
def test_a_video_that_kills_its_ray_workers_is_failed_not_left_pending(
    batch,
    fault_server,  # noqa: F811
    tmp_path,
):
    out = tmp_path / "run"
    first = _run(fault_server, batch, out)
    videos = _videos(out)
    assert videos["good0"]["status"] == videos["good1"]["status"] == "done", first.stderr
    poison = videos["poison"]
    assert poison["status"] == "failed" and poison["reason"] == "worker_crashed"
    assert poison["error"].startswith("killed 2 workers (WorkerCrashedError")
    assert "a rerun does not retry it: --retry-failed retries it" in poison["error"]
    assert first.returncode == 1, first.stderr  # some videos failed (the one exit-code rule)
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [f["reason"] for f in failures] == ["worker_crashed"]

    # A plain rerun does not send the poison video to a worker again.
    attempts = poison["attempts"]
    again = _run(fault_server, batch, out)
    assert again.returncode == 1, again.stderr
    assert _videos(out)["poison"]["attempts"] == attempts
    assert "killed its Ray worker" not in again.stderr

    # --retry-failed does: it kills its workers again and is failed again.
    retried = _run(fault_server, batch, out, "--retry-failed")
    assert retried.returncode == 1, retried.stderr
    assert "killed its Ray worker (1 of 2)" in retried.stderr
    after = _videos(out)
    assert after["poison"]["attempts"] > attempts and after["poison"]["reason"] == "worker_crashed"
    assert after["good0"]["status"] == after["good1"]["status"] == "done"
    with sqlite3.connect(out / "run.sqlite") as conn:  # the count ended with its outcome
        assert conn.execute("SELECT COUNT(*) FROM worker_deaths").fetchone()[0] == 0
