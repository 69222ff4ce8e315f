"""The stage registry: every stage by name, and the stage list of each command.

    keyframes  prepare -> keyframes
    caption    prepare -> [short_caption -> dedup] -> keyframes -> caption
    run        prepare -> [short_caption -> dedup] -> keyframes -> caption

(``[...]`` only with ``filter.dedup``). A new stage is one module and one line in
:data:`STAGES`.

    stages = build_stages(stage_names("run", cfg), cfg, run_dir)
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from diffcap.config import RunConfig
from diffcap.engine.stage import Stage
from diffcap.errors import ConfigError

COMMANDS = ("keyframes", "caption", "run")


class _Stages(Mapping[str, type[Stage]]):
    """Stage name -> class, each module imported on first use: a keyframes command never
    loads the captioning stages (nor the models and prompts they import). The import
    checkers do not see these edges; tests/stages/test_registry.py keeps every path inside
    ``diffcap.stages``."""

    def __init__(self, paths: dict[str, str]) -> None:
        self._paths = paths

    def __getitem__(self, name: str) -> type[Stage]:
        module, attr = self._paths[name].split(":")
        cls: type[Stage] = getattr(importlib.import_module(module), attr)
        return cls

    def __contains__(self, name: object) -> bool:  # (Mapping's would import the module)
        return name in self._paths

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __repr__(self) -> str:
        return f"STAGES({self._paths!r})"

    def __len__(self) -> int:
        return len(self._paths)


STAGES: Mapping[str, type[Stage]] = _Stages(
    {
        "prepare": "diffcap.stages.prepare:PrepareStage",
        "short_caption": "diffcap.stages.caption:ShortCaptionStage",
        "dedup": "diffcap.stages.dedup_stage:DedupStage",
        "keyframes": "diffcap.stages.keyframes:KeyframeStage",
        "caption": "diffcap.stages.caption:CaptionStage",
    }
)


def build_stages(names: list[str], cfg: Any, run_dir: str | Path) -> list[Stage]:
    """The named stages in order, each holding the run's config."""
    return [STAGES[n](cfg, run_dir) for n in names]


def stage_names(command: str, cfg: RunConfig) -> list[str]:
    """The stage list of a command (see the module docstring)."""
    if command == "keyframes":
        return ["prepare", "keyframes"]
    if command in ("caption", "run"):
        dedup = ["short_caption", "dedup"] if cfg.filter.dedup else []
        return ["prepare", *dedup, "keyframes", "caption"]
    raise ConfigError(f"unknown pipeline {command!r}", hint=f"one of {', '.join(COMMANDS)}")
