"""Atomic file writes with temporary names unique per process and call.

Two processes (or threads) writing the same output never share a temporary file, and a
reader never sees half a file: content goes to ``.NAME.<pid>.<random>.tmp`` beside the
target and is renamed into place only when complete.

    atomic_write_text(run_dir / "config.yaml", text)
    with atomic_open(path) as fh: fh.write(...)
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


def temp_path(path: Path) -> Path:
    """A temporary name beside ``path``, unique to this process and call."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


@contextmanager
def atomic_open(path: Path) -> Iterator[TextIO]:
    """Write a text file under a temporary name, renamed into place only on success."""
    tmp = temp_path(path)
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            yield fh
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_open(path) as fh:
        fh.write(text)
