"""Loopback servers for tests: a real ``transformers serve`` and a scriptable fault server.

1. ``transformers serve`` with the tiny LLaVA (needs the ``serving`` extra)::

       def test_x(tiny_llava_server):           # session-scoped, ~5 s to start once
           tiny_llava_server.base_url            # "http://127.0.0.1:PORT/v1"
           tiny_llava_server.model               # the model name to send (the folder path:
                                                 # the server is pinned to it and rejects others)

   ``start_transformers_serve(model_dir)`` is the context manager behind it.

2. The scriptable fault server lives in :mod:`support.fault_server` (re-exported here):
   :class:`FaultServer` and the ``fault_server`` fixture (reset per test, one per session).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.fault_server import Fault, FaultServer, Received  # noqa: F401 (re-exported)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServeHandle:
    base_url: str
    model: str
    process: subprocess.Popen
    log_path: Path


def _serve_command(model_dir: Path, port: int) -> list[str]:
    script = Path(sys.executable).with_name("transformers")
    args = [
        "serve",
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--device",
        "cpu",
        "--log-level",
        "warning",
    ]
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from transformers.cli.transformers import main; main()", *args]


@contextlib.contextmanager
def start_transformers_serve(model_dir: Path, timeout_s: float = 90.0) -> Iterator[ServeHandle]:
    """Run ``transformers serve MODEL_DIR`` (pinned to that model) on a free loopback port."""
    port = free_port()
    fd, name = tempfile.mkstemp(prefix=f"transformers-serve-{port}-", suffix=".log")
    os.close(fd)
    log_path = Path(name)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            _serve_command(Path(model_dir), port),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    try:
        _wait_ready(f"http://127.0.0.1:{port}/health", proc, log_path, timeout_s)
        yield ServeHandle(f"http://127.0.0.1:{port}/v1", str(model_dir), proc, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_path.unlink(missing_ok=True)


def _wait_ready(url: str, proc: subprocess.Popen, log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"transformers serve exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(
        f"transformers serve not ready after {timeout_s} s:\n{log_path.read_text()[-3000:]}"
    )


@pytest.fixture(scope="session")
def tiny_llava_server(tiny_llava_dir: Path) -> Iterator[ServeHandle]:
    """``transformers serve`` with the tiny LLaVA, once per session (needs tiny_llava_dir)."""
    with start_transformers_serve(tiny_llava_dir) as handle:
        yield handle


@pytest.fixture(scope="session")
def _fault_server_session() -> Iterator[FaultServer]:
    with FaultServer() as srv:
        yield srv


@pytest.fixture
def fault_server(_fault_server_session: FaultServer) -> Iterator[FaultServer]:
    """The session's fault server, with schedules, records, latency and reply reset."""
    _fault_server_session.reset()
    yield _fault_server_session
    _fault_server_session.reset()
