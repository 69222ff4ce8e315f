"""Package attributes imported on first use (PEP 562), for packages whose public names would
otherwise load heavy modules (torch, the web stack, every exporter...) at ``import``.

    __getattr__ = lazy_attributes(__name__, {"ExportConfig": "diffcap.config.export"}, globals())
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(
    package: str, where: Mapping[str, str], namespace: dict[str, Any]
) -> Callable[[str], Any]:
    """A module ``__getattr__``: ``name`` -> ``getattr(import_module(where[name]), name)``,
    kept in ``namespace`` (the package's ``globals()``) so it is looked up once."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__


__all__ = ["lazy_attributes"]
