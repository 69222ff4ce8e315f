"""Reading a run directory that cannot be written (a read-only mount, another user's run).

SQLite in WAL mode needs to create its index file beside the database even to read; on a
read-only mount it cannot, so the database is opened ``immutable``, or, when a run killed
before its last checkpoint left commits in the WAL, from a private copy of both files.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path


def snapshot(path: Path) -> Path:
    """Copy ``path`` and its ``-wal`` into a private temporary folder (removed at exit)."""
    folder = Path(tempfile.mkdtemp(prefix="diffcap-ro-"))
    atexit.register(shutil.rmtree, folder, True)
    for suffix in ("", "-wal"):
        shutil.copyfile(path.with_name(path.name + suffix), folder / (path.name + suffix))
    return folder / path.name


def mount_writable(folder: Path) -> bool:
    """False on a read-only mount (root passes ``os.access`` checks even there)."""
    try:
        return not (os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False
