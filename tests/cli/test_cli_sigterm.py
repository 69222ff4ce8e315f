"""SIGTERM (docker stop, systemd) is graceful (issue 22, item 9): the answers in flight are
awaited and kept, nothing new is sent, the run exits 143, and a rerun pays for nothing twice."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from diffcap.video.synth import Scene, write_video
from support.fault_server import FaultServer


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("sigterm_videos")
    for i in range(4):
        write_video(
            root / f"v{i}.mp4", [Scene(1.0, hue=i / 4), Scene(1.0, hue=0.9)], size=(64, 48), fps=10
        )
    return root


def command(videos, run_dir, srv):
    return [
        sys.executable,
        "-m",
        "diffcap",
        "run",
        str(videos),
        "--out",
        str(run_dir),
        "--backend",
        "openai",
        "--api-base",
        srv.base_url,
        "--model",
        "tiny",
        "--embedder",
        "weightless",
        "--workers",
        "1",
        "--concurrency",
        "2",
        "--no-progress",
    ]


def body_hash(received) -> str:
    return hashlib.sha256(json.dumps(received.body, sort_keys=True).encode()).hexdigest()


@pytest.mark.timeout(300)
def test_sigterm_finishes_the_answers_in_flight_then_exits_143(videos, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DIFFCAP_API_KEY": "test-key"}
    run_dir = tmp_path / "run"
    with FaultServer(latency=1.5) as srv:
        proc = subprocess.Popen(
            command(videos, run_dir, srv),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while not srv.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert srv.requests, "no request reached the server"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 143, err[-3000:]
        assert "stopped by SIGTERM" in out and "SIGTERM: finishing" in err
        first = list(srv.requests)
        # every request that was sent got its answer before the process left
        assert len(srv.answered) == len(first) and all(r.answered_at for r in first)
        assert (run_dir / "records").is_dir()  # outputs were written on the way out
        srv.reset()
        srv.latency = 0.0
        again = subprocess.run(
            command(videos, run_dir, srv), env=env, capture_output=True, text=True, timeout=180
        )
        assert again.returncode == 0, again.stderr[-3000:]
    paid_before = {body_hash(r) for r in first}
    assert not paid_before & {body_hash(r) for r in srv.requests}  # nothing paid twice
