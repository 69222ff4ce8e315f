"""Ctrl-C (SIGINT to the whole foreground process group, as a terminal sends it): the first
one finishes the answers in flight and exits 130 as SIGTERM does; a second stops at once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from diffcap.video.synth import Scene, write_video
from support.fault_server import FaultServer


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("sigint_videos")
    for i in range(4):
        write_video(
            root / f"v{i}.mp4", [Scene(1.0, hue=i / 4), Scene(1.0, hue=0.9)], size=(64, 48), fps=10
        )
    return root


def _start(videos, run_dir, srv) -> subprocess.Popen[str]:
    args = [
        sys.executable, "-m", "diffcap", "run", str(videos), "--out", str(run_dir),
        "--backend", "openai", "--api-base", srv.base_url, "--model", "tiny",
        "--embedder", "weightless", "--workers", "1", "--concurrency", "2", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DIFFCAP_API_KEY": "test-key"}
    # A session of its own: the Ctrl-C below reaches every process of the run, as a
    # terminal's does, and nothing of the test.
    return subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip


def _wait_for_requests(srv, n: int = 1) -> None:
    deadline = time.monotonic() + 120
    while len(srv.requests) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(srv.requests) >= n, "no request reached the server"


@pytest.mark.timeout(300)
def test_first_ctrl_c_finishes_the_answers_in_flight_then_exits_130(videos, tmp_path):
    with FaultServer(latency=2.0) as srv:
        proc = _start(videos, tmp_path / "run", srv)
        _wait_for_requests(srv)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        sent = list(srv.requests)
    assert proc.returncode == 130, err[-3000:]
    said = re.search(r"finishing (\d+) in-flight requests; Ctrl-C again to stop now", err)
    assert said and 1 <= int(said.group(1)) <= 2, err[-3000:]  # --concurrency 2
    assert "stopped by Ctrl-C" in out and "Traceback" not in err
    # every request that was sent got its answer before the process left, and was kept
    assert len(srv.answered) == len(sent) and all(r.answered_at for r in sent)
    assert (tmp_path / "run" / "records").is_dir()  # outputs were written on the way out


@pytest.mark.timeout(300)
def test_a_second_ctrl_c_stops_at_once(videos, tmp_path):
    with FaultServer(latency=30.0) as srv:
        proc = _start(videos, tmp_path / "run", srv)
        _wait_for_requests(srv)
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(1.0)
        t0 = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
        waited = time.monotonic() - t0
        answered = len(srv.answered)
    assert proc.returncode == 130, err[-3000:]
    assert waited < 15 and answered == 0  # the 30 s answers in flight were not awaited
    assert "Ctrl-C again to stop now" in err and "stopped now" in err
