"""An exclusive lock on a run directory: one writing process at a time.

A second ``diffcap run`` (or ``caption``, ``keyframes``) on a directory in use exits at once
with one line naming the holder, instead of captioning everything twice. The lock is an
``flock`` on ``RUN_DIR/.lock``, so it is released by the kernel when the holder dies, even by
SIGKILL; the file also says who holds it (pid, host, command, start time).

    with RunLock(run_dir, "diffcap run"):
        ...
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from diffcap.errors import RunDirLocked
from diffcap.store.rundir import RunDir


class RunLock:
    def __init__(self, run_dir: str | Path | RunDir, command: str = "diffcap") -> None:
        self.path = RunDir.of(run_dir).lock
        self.command = command
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _describe(os.pread(fd, 4096, 0))
                raise RunDirLocked(
                    f"{self.path.parent} is in use by {holder}",
                    hint="wait for that run to finish (or stop it), or pass another --out",
                ) from None
            info = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "command": self.command,
                "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except BaseException:
            os.close(fd)  # closing drops the flock too: nothing is left held
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _describe(blob: bytes) -> str:
    try:
        info = json.loads(blob.decode() or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        info = {}
    if not info:
        return "another process"
    return (
        f"pid {info.get('pid')} on {info.get('host')} ({info.get('command')}, "
        f"since {info.get('since')})"
    )
