"""The stage registry: every stage by name, and the stage list of each command.

    keyframes  prepare -> keyframes
    caption    prepare -> [short_caption -> dedup] -> keyframes -> caption
    run        prepare -> [short_caption -> dedup] -> keyframes -> caption

(``[...]`` only with ``filter.dedup``). A new stage is one module and one line in
:data:`STAGES`.

    stages = build_stages(stage_names("run", cfg), cfg, run_dir)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from diffcap.config import RunConfig
from diffcap.engine.stage import Stage
from diffcap.errors import ConfigError
from diffcap.stages.caption import CaptionStage, ShortCaptionStage
from diffcap.stages.dedup_stage import DedupStage
from diffcap.stages.keyframes import KeyframeStage
from diffcap.stages.prepare import PrepareStage

COMMANDS = ("keyframes", "caption", "run")

STAGES: dict[str, type[Stage]] = {
    s.name: s for s in (PrepareStage, ShortCaptionStage, DedupStage, KeyframeStage, CaptionStage)
}


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
