"""A SIGKILLed driver leaves no local Ray behind (issue 22, item 9): a watcher stops the Ray
processes the driver started, and what they started, once the driver is gone."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from diffcap.engine.ray_reaper import descendants, start_reaper, start_time

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def gone(pids, timeout: float) -> set[int]:
    """The pids still alive after waiting up to ``timeout`` seconds for them to go."""
    deadline = time.monotonic() + timeout
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        for pid in list(alive):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # our own children: reap zombies
            if start_time(pid) is None or _zombie(pid):
                alive.discard(pid)
        time.sleep(0.1)
    return alive


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def kill_all(pids) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def test_the_watched_processes_and_their_children_stop_when_the_driver_dies():
    driver = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    # a "raylet" that started a "worker" of its own
    tree = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; "
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
            "time.sleep(600)",
        ]
    )
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        time.sleep(0.5)
        family = descendants([tree.pid])
        assert len(family) == 2
        reaper = start_reaper(driver.pid, [tree.pid])
        assert reaper is not None
        time.sleep(1.0)
        assert gone(family, 0.1) == family  # all alive while the driver lives
        driver.kill()
        driver.wait()
        assert gone(family, 15) == set()
        assert bystander.poll() is None  # only what it watched
        reaper.wait(timeout=15)
    finally:
        kill_all([driver.pid, bystander.pid, *descendants([tree.pid])])
        bystander.wait()
        tree.wait()


def test_a_clean_shutdown_ends_the_watcher():
    driver = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    ray_like = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        reaper = start_reaper(driver.pid, [ray_like.pid])
        ray_like.kill()  # the driver shut its Ray down
        ray_like.wait()
        assert reaper.wait(timeout=15) == 0
        assert driver.poll() is None
    finally:
        kill_all([driver.pid])
        driver.wait()


DRIVER = """
import json, os, time
from diffcap.config import EngineConfig
from diffcap.engine.ray_executor import ensure_ray
from diffcap.engine.ray_reaper import descendants
ray = ensure_ray(EngineConfig(engine="ray", workers=1))
@ray.remote
def pid():
    return os.getpid()
worker = ray.get(pid.remote())
node = ray._private.worker._global_node
started = [p.process.pid for ps in node.all_processes.values() for p in ps]
print(json.dumps({"worker": worker, "pids": sorted(descendants(started))}), flush=True)
time.sleep(600)
"""


@pytest.mark.timeout(240)
def test_a_sigkilled_ray_driver_leaves_no_ray_processes():
    pytest.importorskip("ray")
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER], env=env, stdout=subprocess.PIPE, text=True
    )
    info = json.loads(driver.stdout.readline())
    pids = set(info["pids"])
    try:
        assert info["worker"] in pids and len(pids) >= 4  # gcs, raylet, agents, a worker
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        left = gone(pids, 60)
        assert left == set(), f"Ray processes left behind: {sorted(left)}"
    finally:
        kill_all(pids)
