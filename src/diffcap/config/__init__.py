"""The configuration: pydantic models, one section per pipeline stage, plus one section per
command that is not a run (``export``, ``eval``, ``train``, ``dpo``).

Unknown keys are errors that name the key (``extra="forbid"``); values are range-checked.
Every command's flags are generated from these fields and their descriptions
(:mod:`diffcap.cli.options` for the run sections, :mod:`diffcap.cli.sections` for the command
sections), so an option and its default exist once. ``--config file.yaml`` loads the same
models from YAML.

    cfg = RunConfig.model_validate({"keyframes": {"interval": 1.0}})
    cfg.keyframes.threshold      # None -> the embedder's default

Two different limits that are easy to confuse have different names:
``filter.max_duration`` drops videos longer than N seconds; ``keyframes.max_seconds``
processes only the first N seconds of each video.

Modules: :mod:`~diffcap.config.bounds` (the base section and typo bounds),
:mod:`~diffcap.config.inputs` (input, filter), :mod:`~diffcap.config.keyframes`,
:mod:`~diffcap.config.model`, :mod:`~diffcap.config.run` (caption, summary, output, engine and
:class:`RunConfig`), :mod:`~diffcap.config.export`, :mod:`~diffcap.config.eval`,
:mod:`~diffcap.config.train`, :mod:`~diffcap.config.resolve` (presets, YAML, ``--set``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from diffcap.config.bounds import MAX_CONCURRENCY, MAX_WORKERS, MIN_INTERVAL, Section
from diffcap.config.inputs import FilterConfig, InputConfig
from diffcap.config.keyframes import KeyframeConfig
from diffcap.config.model import ModelConfig
from diffcap.config.run import (
    CaptionConfig,
    EngineConfig,
    OutputConfig,
    RunConfig,
    SummaryConfig,
)
from diffcap.lazyattr import lazy_attributes

if TYPE_CHECKING:
    from diffcap.config.eval import EvalConfig
    from diffcap.config.export import ALL_TASKS, LLAVA_TASKS, ExportConfig
    from diffcap.config.train import DPOConfig, LoraConfig, TrainConfig, TrainingConfig

#: The sections of the commands that are not runs, imported on first use: a run or a
#: keyframes command never builds their models (issue 24's start-up).
_COMMAND_SECTIONS: dict[str, str] = {
    "EvalConfig": "diffcap.config.eval",
    "ALL_TASKS": "diffcap.config.export",
    "LLAVA_TASKS": "diffcap.config.export",
    "ExportConfig": "diffcap.config.export",
    "DPOConfig": "diffcap.config.train",
    "LoraConfig": "diffcap.config.train",
    "TrainConfig": "diffcap.config.train",
    "TrainingConfig": "diffcap.config.train",
}

#: The former private base name, kept for code that subclassed it.
_Section = Section

__all__ = [
    "ALL_TASKS",
    "LLAVA_TASKS",
    "MAX_CONCURRENCY",
    "MAX_WORKERS",
    "MIN_INTERVAL",
    "CaptionConfig",
    "DPOConfig",
    "EngineConfig",
    "EvalConfig",
    "ExportConfig",
    "FilterConfig",
    "InputConfig",
    "KeyframeConfig",
    "LoraConfig",
    "ModelConfig",
    "OutputConfig",
    "RunConfig",
    "Section",
    "SummaryConfig",
    "TrainConfig",
    "TrainingConfig",
]


if not TYPE_CHECKING:  # (type checkers see the imports above; a typo stays an error there)
    __getattr__ = lazy_attributes(__name__, _COMMAND_SECTIONS, globals())


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
