"""Config section ``export``: the settings of ``diffcap export`` (one definition, defaults once).

The flags of ``diffcap export`` are generated from these fields (:mod:`diffcap.cli.sections`);
a YAML ``export:`` section or ``--set export.window=8`` sets them too. Settings an export
takes from the run instead (prompt preset, templates, image sizes) live on
:class:`diffcap.export.ExportOptions`, which extends this section.

    ExportConfig.model_validate({"tasks": "slide,fast", "window": 8}).tasks   # ('slide', 'fast')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from diffcap.config.bounds import Section
from diffcap.config.run import CaptionConfig

#: The captioner's four tasks (the default of an export).
LLAVA_TASKS = ("fast", "slide", "clip", "recaption")
#: Every task the builder knows: the four above (the default of training) plus slide mode's
#: summary step.
ALL_TASKS = (*LLAVA_TASKS, "summary")


def split_names(value: Any) -> Any:
    """``"fast, slide"`` -> ``("fast", "slide")`` (a comma-separated string, as the flag takes
    it, or a YAML list)."""
    if isinstance(value, str):
        return tuple(t.strip() for t in value.split(",") if t.strip())
    return value


class ExportConfig(Section):
    absolute_paths: bool = Field(False, description="Write absolute image/video paths.")
    tasks: tuple[str, ...] = Field(
        LLAVA_TASKS,
        description="llava, llamafactory, swift, qwenvl: tasks (comma-separated; `summary` "
        "too; training's default includes it).",
        json_schema_extra={"choices": list(ALL_TASKS)},
    )
    pair_layout: Literal["composite", "two_images"] = Field(
        "composite",
        description="llava slide: how a pair is shown (an export has no model to follow; "
        "train's auto shows it as the run's inference did).",
    )
    fast_layout: Literal["grid", "strip"] = Field(
        CaptionConfig.model_fields["fast_layout"].default,
        description="llava fast: tiled grid or vertical strip.",
    )
    fast_max_frames: int = Field(
        CaptionConfig.model_fields["fast_max_frames"].default,
        ge=1,
        description="llava fast: keyframes in the tiled image.",
    )
    clip_captions: Path | None = Field(
        None,
        description="llava clip: a `--format clips` output to train clip summary on.",
        json_schema_extra={"path": "file", "exists": True},
    )
    grid_question: str = Field(
        "Describe this video in detail.",
        description="grid: the question after the fixed pre-prompt.",
    )
    window: int = Field(4, ge=1, description="clips: keyframes per clip.")
    stride: int = Field(2, ge=1, description="clips: keyframes between clip starts.")

    @field_validator("tasks", mode="before")
    @classmethod
    def _split_tasks(cls, value: Any) -> Any:
        return split_names(value)
