"""Atomic file writes with temporary names unique per process and call.

Two processes (or threads) writing the same output never share a temporary file, and a
reader never sees half a file: content goes to ``.NAME.<pid>.<random>.tmp`` beside the
target and is renamed into place only when complete.

    atomic_write_text(run_dir / "config.yaml", text)
    with atomic_open(path) as fh: fh.write(...)

Also the one rule for which files a record may name as keyframes (:func:`is_keyframe_path`):
records are read from files anyone may have written, so exports and the viewer open only
keyframe images laid out as diffcap writes them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import TextIO

#: Suffixes of keyframe images (``keyframes.image_format``: jpg or png).
KEYFRAME_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})


def is_keyframe_path(path: str | os.PathLike[str], video_id: str) -> bool:
    """Whether ``path`` names a keyframe image of ``video_id`` as diffcap lays them out:
    ``.../keyframes/<video_id>/<name>.jpg|png`` (``<stem>.keyframes/`` for diffcap 0.1's
    ``caption`` output). Pass a resolved path (no ``..``, symlinks followed): a record that
    names ``/etc/passwd``, ``../../.ssh/id_rsa`` or any other file is refused."""
    p = PurePath(path)
    if p.suffix.lower() not in KEYFRAME_SUFFIXES or len(p.parts) < 3 or ".." in p.parts:
        return False
    folder, kind = p.parts[-2], p.parts[-3]
    return folder == video_id and (kind == "keyframes" or kind.endswith(".keyframes"))


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
