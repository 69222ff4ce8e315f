"""Stop the local Ray a diffcap driver started when that driver dies without shutting it down
(SIGKILL, the OOM killer): its GCS, raylet, agents and workers would otherwise stay behind.

:func:`start_reaper` runs this module as a small detached process that watches the driver's
pid; when the driver is gone it sends SIGTERM to the Ray processes the driver started and
to their descendants (then SIGKILL to any left after a few seconds). A process is signalled
only while its start time is the one recorded at the start (a reused pid is left alone), and
the watcher ends on its own once those processes are gone (a clean ``ray.shutdown()``).
Linux only (it reads ``/proc``); elsewhere it does nothing. Never used for a cluster diffcap
joined (``engine.ray_address``): that Ray is not the driver's to stop.

    start_reaper(os.getpid(), [gcs_pid, raylet_pid, ...])
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

POLL_S = 0.5
#: Seconds between scans for the watched processes' descendants (agents, workers): they are
#: remembered while the driver lives, as they may be re-parented before the driver's death
#: is noticed (a raylet that dies first leaves its agents to init). Every poll while Ray
#: starts its agents (``EARLY_S``), then every ``SCAN_S``.
SCAN_S = 5.0
EARLY_S = 30.0
GRACE_S = 3.0


def start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), or None when it is gone (a zombie,
    dead but not yet waited for, counts as gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def descendants(roots: Iterable[int]) -> set[int]:
    """``roots`` and every process below them, from one scan of ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = _parent(int(entry.name))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    out, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in out:
            out.add(pid)
            todo += children.get(pid, [])
    return out


def start_reaper(
    driver: int, pids: list[int], ready_s: float = 20.0
) -> subprocess.Popen[bytes] | None:
    """Watch ``driver``; stop ``pids`` (and what they started) when it dies. Returns once the
    watcher has taken its first look (at most ``ready_s`` seconds), so a driver killed at
    once is still seen."""
    if not sys.platform.startswith("linux") or not pids:
        return None
    args = [f"{p}:{t}" for p in [driver, *pids] if (t := start_time(p)) is not None]
    proc = subprocess.Popen(
        [sys.executable, "-m", "diffcap.engine.ray_reaper", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # not in the driver's group: a kill of the group spares it
        close_fds=True,
    )
    assert proc.stdout is not None
    if not select.select([proc.stdout], [], [], ready_s)[0]:
        log.warning("the Ray watcher did not start in %g s; a killed driver may leave Ray", ready_s)
    proc.stdout.close()
    return proc


def _alive(watched: dict[int, int]) -> dict[int, int]:
    return {p: t for p, t in watched.items() if start_time(p) == t}


def _signal(watched: dict[int, int], sig: int) -> None:
    for pid, started in watched.items():
        if start_time(pid) == started:
            with contextlib.suppress(OSError):  # gone in between
                os.kill(pid, sig)


def reap(driver: int, driver_started: int, watched: dict[int, int]) -> None:
    """Wait for ``driver`` to die, then stop ``watched`` ({pid: start time}) and their
    descendants. Returns early once every watched process is gone."""
    family = dict(watched) | _family(_alive(watched))
    with contextlib.suppress(OSError):  # the driver reads this line, then closes the pipe
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        sys.stdout.close()
    began = scanned = time.monotonic()
    while start_time(driver) == driver_started:
        if not _alive(family):
            return  # a clean shutdown: nothing to do
        now = time.monotonic()
        if now - began < EARLY_S or now - scanned >= SCAN_S:
            family = _alive(family) | _family(_alive(watched))
            scanned = time.monotonic()
        time.sleep(POLL_S)
    family = _alive(family) | _family(_alive(family))
    _signal(family, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    while _alive(family) and time.monotonic() < deadline:
        time.sleep(0.1)
    _signal(family, signal.SIGKILL)


def _family(roots: dict[int, int]) -> dict[int, int]:
    return {p: t for p in descendants(roots) if (t := start_time(p)) is not None}


def main(argv: list[str]) -> None:
    pairs = [(int(p), int(t)) for p, _, t in (item.partition(":") for item in argv)]
    (driver, driver_started), *watched = pairs
    reap(driver, driver_started, dict(watched))


if __name__ == "__main__":
    main(sys.argv[1:])
