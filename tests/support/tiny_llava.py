"""The tiny LLaVA of :mod:`diffcap.models.tiny`, built once per machine for the tests.

    path = cached_tiny_llava()           # built once, cached under $TMPDIR/diffcap-test-cache

    def test_x(tiny_llava_dir): ...    # session fixture: the cached folder (do not modify it)

Use the fixture in a test module (or a conftest.py) with
``from support.tiny_llava import tiny_llava_dir  # noqa: F401``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

import diffcap.models.tiny as _tiny
from diffcap.models.tiny import IMAGE_TOKENS, MODEL_NAME, build_tiny_llava

__all__ = [
    "IMAGE_TOKENS",
    "MODEL_NAME",
    "build_tiny_llava",
    "cached_tiny_llava",
    "retrain_in_place",
    "tiny_llava_dir",
]


def cached_tiny_llava(cache_root: str | Path | None = None, positions: int = 8192) -> Path:
    """The tiny LLaVA in a temp-dir cache keyed by this file and the transformers version;
    built on first use (atomically, so parallel sessions can share it)."""
    import transformers

    key = hashlib.sha256(
        Path(_tiny.__file__).read_bytes() + transformers.__version__.encode()
    ).hexdigest()[:12]
    root = Path(cache_root or Path(tempfile.gettempdir()) / "diffcap-test-cache")
    target = root / (f"tiny-llava-{key}" + ("" if positions == 8192 else f"-{positions}"))
    if (target / "diffcap_tiny.json").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="tiny-llava-", dir=root))
    build_tiny_llava(staging, positions=positions)
    try:
        os.rename(staging, target)
    except OSError:  # another session finished first: use theirs
        shutil.rmtree(staging, ignore_errors=True)
    return target


@pytest.fixture(scope="session")
def tiny_llava_dir() -> Path:
    """The tiny LLaVA folder (built once, cached in the temp dir across sessions)."""
    return cached_tiny_llava()


def retrain_in_place(folder: Path) -> None:
    """Save different weights into a copy of the tiny LLaVA (same file names and sizes), as
    training into the same output folder does."""
    import torch
    from safetensors.torch import load_file, save_file

    path = Path(folder) / "model.safetensors"
    weights = load_file(str(path))
    torch.manual_seed(1)
    changed = {
        k: v + 0.5 * torch.randn_like(v) if v.is_floating_point() else v for k, v in weights.items()
    }
    save_file(changed, str(path), metadata={"format": "pt"})
