"""A model's identity beyond its name: a fingerprint of a local model folder's files.

A model named by a folder path (``--model runs/sft/model``, or ``transformers serve`` of that
folder) keeps its name when it is retrained into the same folder. The request cache key and
the run's saved identity hold this fingerprint too, so answers of the old weights are never
replayed for the new ones (see ``docs/runs.md``, "Model identity").

Cheap by design (it runs once per worker and model): small files (config, tokenizer, chat
template: up to :data:`HASHED_MAX_BYTES`) are hashed whole; larger ones (weights) count by
name, size and modification time, never read.

    model_fingerprint("runs/sft/model")    # 'a3f1...' (16 hex digits)
    model_fingerprint("gpt-4o-mini")       # None: not a local path, the name is the identity
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

#: Files up to this size are hashed whole; larger ones by size and modification time.
HASHED_MAX_BYTES = 1 << 20
#: At most this many files are looked at (a model folder has tens; a wrong path many more).
MAX_FILES = 5000


def model_fingerprint(name: str | None) -> str | None:
    """16 hex digits that change when the files of the local model ``name`` change (a file
    or a folder, searched recursively, hidden entries skipped); None when ``name`` is not a
    local path (a hub id, a served model's name): then the name is all there is."""
    if not name:
        return None
    path = Path(name).expanduser()
    try:
        if path.is_file():
            files = [path]
        elif path.is_dir():
            files = _files(path)
        else:
            return None
        digest = hashlib.sha256()
        for f in files:
            digest.update(_file_id(f, path).encode())
        return digest.hexdigest()[:16]
    except OSError:
        return None


def _files(root: Path) -> list[Path]:
    out: list[Path] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += [Path(folder, n) for n in sorted(names) if not n.startswith(".")]
        if len(out) >= MAX_FILES:
            break
    return out[:MAX_FILES]


def _file_id(path: Path, root: Path) -> str:
    st = path.stat()
    rel = path.name if path == root else path.relative_to(root).as_posix()
    if st.st_size <= HASHED_MAX_BYTES:
        return f"{rel}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n"
    return f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n"


def model_identities(*names: str | None) -> dict[str, str]:
    """``{name: fingerprint}`` of the local models among ``names`` (for a run's metadata)."""
    out = {}
    for name in names:
        fp = model_fingerprint(name)
        if name and fp is not None:
            out[name] = fp
    return out


__all__ = ["HASHED_MAX_BYTES", "model_fingerprint", "model_identities"]
