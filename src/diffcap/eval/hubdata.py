"""Benchmark files by Hugging Face dataset id: ``--data hf:ORG/NAME[/PATH]``.

Only ``PATH`` (a file, or a folder's files) is fetched from the dataset repo, into the
Hugging Face cache (``HF_HOME``), so ``hf:OpenGVLab/MVBench/json`` gets the 20 question files
and not the videos. A cached snapshot is used offline (``HF_HUB_OFFLINE=1``).

    hub_data("hf:lmms-lab/Video-MME/videomme")   # Path(".../snapshots/<sha>/videomme")
"""

from __future__ import annotations

import logging
from pathlib import Path

from diffcap._deps import require
from diffcap.eval.base import BenchmarkFileError

log = logging.getLogger(__name__)

__all__ = ["PREFIX", "hub_data", "is_hub_data"]

PREFIX = "hf:"


def is_hub_data(data: str | Path) -> bool:
    return str(data).startswith(PREFIX)


def hub_data(spec: str) -> Path:
    """The local path of ``hf:ORG/NAME[/PATH]`` (downloaded when not cached)."""
    parts = [p for p in spec[len(PREFIX) :].split("/") if p]
    if len(parts) < 2:
        raise BenchmarkFileError(f"--data {spec}: expected hf:ORG/NAME[/PATH]")
    repo, sub = "/".join(parts[:2]), "/".join(parts[2:])
    hf = require("huggingface_hub", extra="eval", purpose="--data hf:...")
    patterns = [sub, f"{sub}/*", f"{sub}/**"] if sub else None
    try:
        root = hf.snapshot_download(repo, repo_type="dataset", allow_patterns=patterns)
    except Exception as exc:  # the hub client raises many types (offline, 404, gated, HTTP)
        raise BenchmarkFileError(
            f"--data {spec}: cannot get the dataset files ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})",
            hint="download them where the hub is reachable and pass the local path",
        ) from None
    path = Path(root) / sub
    if not path.exists():
        raise BenchmarkFileError(f"--data {spec}: the dataset has no {sub!r}")
    log.info("%s: benchmark files in %s", spec, path)
    return path
