"""Config sections ``train`` and ``dpo``: the settings of ``diffcap train`` and
``diffcap train-dpo`` (one definition, defaults once).

Both commands' flags are generated from these fields (:mod:`diffcap.cli.sections`); a YAML
``train:`` / ``dpo:`` section or ``--set train.lr=1e-4`` sets them too. What to train on and
where (DATA or RUNS, ``--model``, ``--out``, ``--db``) is given on the command line and lives
on :class:`diffcap.train.TrainOptions` / :class:`diffcap.train.dpo.DPOOptions`, which extend
these sections.

    TrainConfig.model_validate({"lr": 1e-4, "lora": {"r": 8}}).lora.alpha    # 32
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from diffcap.config.bounds import Section
from diffcap.config.export import ALL_TASKS, split_names


class LoraConfig(Section):
    r: int = Field(16, ge=1, description="LoRA rank.")
    alpha: int = Field(32, ge=1, description="LoRA alpha.")
    dropout: float = Field(0.05, ge=0, le=1, description="LoRA dropout.")
    #: "all-linear" (PEFT: every linear layer but the output head) or comma-separated names.
    target_modules: str = Field(
        "all-linear",
        description="LoRA target modules: all-linear or comma-separated names.",
        json_schema_extra={"flag": "--lora-targets"},
    )


class TrainingConfig(Section):
    """What SFT and DPO training share."""

    method: Literal["lora", "full"] = Field(
        "lora", description="LoRA adapter (PEFT) or full fine-tuning."
    )
    epochs: float = Field(1.0, gt=0, description="Passes over the data.")
    max_steps: int | None = Field(None, ge=1, description="Optimizer steps (wins over --epochs).")
    batch_size: int = Field(1, ge=1, description="Examples per device step.")
    grad_accum: int = Field(1, ge=1, description="Steps accumulated per optimizer step.")
    seed: int = Field(0, description="Seed (data order, init).")
    save_steps: int = Field(50, ge=1, description="Write a checkpoint every N steps.")
    logging_steps: int = Field(10, ge=1, description="Log the loss every N steps.")
    merge: bool = Field(False, description="LoRA: also write the merged model to OUT/merged.")
    lora: LoraConfig = Field(default_factory=LoraConfig)

    @field_validator("max_steps", mode="before")
    @classmethod
    def _by_epochs(cls, value: Any) -> Any:
        """-1 or 0 (the former "no limit") mean: train by epochs."""
        return None if isinstance(value, int) and value <= 0 else value


class TrainConfig(TrainingConfig):
    lr: float = Field(
        2e-4,
        gt=0,
        description="Peak learning rate (train-dpo's is far lower: it tunes a trained model).",
    )
    eval_fraction: float = Field(
        0.1, ge=0, lt=1, description="Videos held out for the eval loss (0: none)."
    )
    resume: bool = Field(False, description="Continue from the last checkpoint in OUT.")
    tasks: tuple[str, ...] = Field(
        ALL_TASKS,
        description="Tasks to train on (comma-separated; an export's default leaves out summary).",
        json_schema_extra={"choices": list(ALL_TASKS)},
    )
    pair_layout: Literal["auto", "two_images", "composite"] = Field(
        "auto",
        description="slide: how a frame pair is shown (auto: as inference does; an export, "
        "which has no model to follow, defaults to composite).",
    )
    prompt_preset: str | None = Field(
        None, description="Prompt preset (default: a run's own; diffcap for data without one)."
    )
    templates: dict[str, str] = Field(
        default_factory=dict,
        description="Replace one prompt template by a file (repeatable; as in `caption`).",
        json_schema_extra={"flag": "--template"},
    )
    clip_captions: Path | None = Field(
        None,
        description="clip task: a `diffcap export --format clips` output (clip captions).",
        json_schema_extra={"path": "file", "exists": True},
    )
    quantize: Literal["4bit"] | None = Field(None, description="QLoRA (CUDA + bitsandbytes).")
    bf16: bool = Field(False, description="bf16 weights and compute (GPU).")
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory.")

    @field_validator("tasks", mode="before")
    @classmethod
    def _split_tasks(cls, value: Any) -> Any:
        return split_names(value)


class DPOConfig(TrainingConfig):
    lr: float = Field(
        5e-6,
        gt=0,
        description="Peak learning rate (far below train's: DPO tunes a trained model).",
    )
    beta: float = Field(
        0.1, gt=0, description="DPO beta (strength of the pull towards the SFT model)."
    )
    task: Literal["fast", "summary"] = Field(
        "fast",
        description="The prompt the summaries answer: the keyframe grid or slide mode's timeline.",
    )
    prompt_run: str | None = Field(
        None,
        description="Run whose keyframes/timeline build the prompts [the first RUN].",
        json_schema_extra={"path": "any", "exists": True},
    )
