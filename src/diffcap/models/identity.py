"""A model's identity beyond its name: a fingerprint of a local model folder's files, and the
identity a server gives the model it serves.

A model named by a folder path (``--model runs/sft/model``, or ``transformers serve`` of that
folder) keeps its name when it is retrained into the same folder. The request cache key and
the run's saved identity hold this fingerprint too, so answers of the old weights are never
replayed for the new ones (see ``docs/runs.md``, "Model identity").

Cheap by design (it runs once per worker and model): small files (config, tokenizer, chat
template: up to :data:`HASHED_MAX_BYTES`) are hashed whole; larger ones (weights) count by
name, size and modification time, never read.

A server can serve another model under the same name (vLLM restarted on new weights with
the same ``--served-model-name``, an Ollama tag pulled again): :func:`served_identity` hashes
what ``GET /models`` says of the served model (``root``, ``parent``, ``created``, ``revision``),
so those answers are not replayed either. A ``created`` that is the time of the listing itself
(vLLM, SGLang and llama.cpp stamp each listing) says nothing and is left out, as are labels that
name no weights (``owned_by``, ``max_model_len``, a load ``status``).

    model_fingerprint("runs/sft/model")    # 'a3f1...' (16 hex digits)
    model_fingerprint("gpt-4o-mini")       # None: not a local path, the name is the identity
    served_identity("http://127.0.0.1:8000/v1", "my-vlm", key)   # '9c0e...' or None
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import urllib.request
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

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


#: What a ``GET /models`` entry says of the weights behind a name (see the module docstring).
SERVED_FIELDS = ("root", "parent", "created", "revision")
#: A ``created`` this close to the listing's own time (seconds) is the listing's time.
LISTING_TIME_S = 5.0


def served_identity(
    api_base: str, model: str, key: str | None, timeout_s: float = 3.0
) -> str | None:
    """16 hex digits from what the server at ``api_base`` lists for ``model`` in ``GET
    /models``; None when it lists nothing for it (or nothing that names weights)."""
    listing = _listing(api_base, key, timeout_s)
    if listing is None:
        return None
    entries, server_time = listing
    entry = next((e for e in entries if isinstance(e, dict) and e.get("id") == model), None)
    if entry is None:
        return None
    fields = {k: entry[k] for k in SERVED_FIELDS if entry.get(k) not in (None, "", 0)}
    created = fields.get("created")
    if isinstance(created, int | float) and abs(created - server_time) <= LISTING_TIME_S:
        del fields["created"]  # stamped when listed: the same weights list anew each time
    if not fields:
        return None
    text = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _listing(api_base: str, key: str | None, timeout_s: float) -> tuple[list[Any], float] | None:
    """The entries of ``GET {api_base}/models`` and the server's time (its ``Date``
    header, else ours); None when it cannot be read (tried twice)."""
    url = api_base.rstrip("/") + "/models"
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key or 'none'}"})
    for attempt in (1, 2):
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                data = json.loads(resp.read(2_000_000))
                date = resp.headers.get("Date")
            break
        except (OSError, ValueError) as exc:
            log.debug("GET %s (try %d): %s", url, attempt, exc)
    else:
        return None
    try:
        server_time = parsedate_to_datetime(date).timestamp() if date else time.time()
    except (TypeError, ValueError):
        server_time = time.time()
    entries = data.get("data") if isinstance(data, dict) else None
    return (entries if isinstance(entries, list) else []), server_time


__all__ = [
    "HASHED_MAX_BYTES",
    "SERVED_FIELDS",
    "model_fingerprint",
    "model_identities",
    "served_identity",
]
