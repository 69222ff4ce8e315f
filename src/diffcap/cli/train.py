"""``diffcap train`` and ``diffcap train-dpo``: thin shells over :mod:`diffcap.train`.

    diffcap train runs/teacher --model llava-hf/llava-interleave-qwen-0.5b-hf --out models/cap
    diffcap train runs/teacher --model BASE --out models/cap --method lora --merge --max-steps 500
    diffcap train-dpo runs/gpt4v runs/local --db votes.sqlite --model models/cap \\
        --out models/cap-dpo

Needs the ``train`` extra (``pip install 'diffcap[train]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from diffcap.cli.export import parse_tasks
from diffcap.cli.options import parse_templates, stack_options
from diffcap.export.base import ALL_TASKS

_common = stack_options(
    click.option("--model", required=True, help="Base model: hub id, model folder or adapter."),
    click.option(
        "--out", required=True, type=click.Path(file_okay=False, path_type=Path),
        help="Output folder (checkpoints, metrics, model card, the trained model).",
    ),
    click.option(
        "--method", type=click.Choice(["lora", "full"]), default="lora", show_default=True,
        help="LoRA adapter (PEFT) or full fine-tuning.",
    ),
    click.option("--epochs", type=click.FloatRange(0, min_open=True), default=1.0,
                 show_default=True, help="Passes over the data."),
    click.option("--max-steps", type=click.IntRange(1),
                 help="Optimizer steps (wins over --epochs)."),
    click.option("--batch-size", type=click.IntRange(1), default=1, show_default=True,
                 help="Examples per device step."),
    click.option("--grad-accum", type=click.IntRange(1), default=1, show_default=True,
                 help="Steps accumulated per optimizer step."),
    click.option("--seed", type=int, default=0, show_default=True, help="Seed (data order, init)."),
    click.option("--save-steps", type=click.IntRange(1), default=50, show_default=True,
                 help="Write a checkpoint every N steps."),
    click.option("--logging-steps", type=click.IntRange(1), default=10, show_default=True,
                 help="Log the loss every N steps."),
    click.option("--merge", is_flag=True, help="LoRA: also write the merged model to OUT/merged."),
    click.option("--lora-r", type=click.IntRange(1), default=16, show_default=True,
                 help="LoRA rank."),
    click.option("--lora-alpha", type=click.IntRange(1), default=32, show_default=True,
                 help="LoRA alpha."),
    click.option("--lora-dropout", type=click.FloatRange(0, 1), default=0.05, show_default=True,
                 help="LoRA dropout."),
    click.option("--lora-targets", default="all-linear", show_default=True,
                 help="LoRA target modules: all-linear or comma-separated names."),
)  # fmt: skip


def _quiet_libraries(quiet: bool) -> None:
    """``-q``: no progress bars from transformers (weights loading/writing) or datasets."""
    if not quiet:
        return
    import importlib

    try:
        datasets = importlib.import_module("datasets")
        tf_logging = importlib.import_module("transformers.utils.logging")
    except ImportError:  # the missing extra is reported by the command itself
        return
    tf_logging.disable_progress_bar()
    datasets.disable_progress_bars()


def _lora(o: dict[str, Any]) -> Any:
    from diffcap.train.model import LoraSettings  # lazy: start-up

    return LoraSettings(
        r=o.pop("lora_r"),
        alpha=o.pop("lora_alpha"),
        dropout=o.pop("lora_dropout"),
        target_modules=o.pop("lora_targets"),
    )


@click.command()
@click.argument("data", nargs=-1, required=True, type=click.Path(path_type=Path))
@_common
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=2e-4, show_default=True,
              help="Peak learning rate.")  # fmt: skip
@click.option(
    "--eval-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.1,
    show_default=True, help="Videos held out for the eval loss (0: none).",
)  # fmt: skip
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in OUT.")
@click.option(
    "--tasks", default=",".join(ALL_TASKS), show_default=True,
    help="Tasks to train on (comma-separated).",
)  # fmt: skip
@click.option(
    "--pair-layout", type=click.Choice(["auto", "two_images", "composite"]), default="auto",
    show_default=True, help="slide: how a frame pair is shown (auto: as inference does).",
)  # fmt: skip
@click.option(
    "--prompt-preset",
    help="Prompt preset (default: a run's own; diffcap for data without one).",
)
@click.option(
    "--template", "templates", multiple=True, metavar="NAME=PATH",
    help="Replace one prompt template by a file (repeatable; as in `caption`).",
)  # fmt: skip
@click.option(
    "--clip-captions", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="clip task: a `diffcap export --format clips` output (clip captions).",
)  # fmt: skip
@click.option("--quantize", type=click.Choice(["4bit"]), help="QLoRA (CUDA + bitsandbytes).")
@click.option("--bf16", is_flag=True, help="bf16 weights and compute (GPU).")
@click.option("--gradient-checkpointing", is_flag=True, help="Trade compute for memory.")
@click.pass_context
def train(ctx: click.Context, data: tuple[Path, ...], **o: Any) -> None:
    """Fine-tune a vision-language model on diffcap captions (DATA: run directories,
    exports, or ShareGPT4Video-style JSONL)."""
    from diffcap.train.sft import TrainOptions, train_sft  # lazy: start-up

    quiet = bool((ctx.obj or {}).get("quiet"))
    _quiet_libraries(quiet)
    opts = TrainOptions(
        data=tuple(str(d) for d in data),
        lora=_lora(o),
        tasks=parse_tasks(o.pop("tasks")),
        templates=parse_templates(o.pop("templates")),
        max_steps=o.pop("max_steps") or -1,
        progress=not quiet,
        **o,
    )
    result = train_sft(opts)
    m = result.metrics
    click.echo(
        f"trained {m['steps']} steps on {m['train_samples']} examples in {m['seconds']:.1f} s: "
        f"train loss {m['initial_train_loss']:.4f} -> {m['final_train_loss']:.4f}"
        + (
            f", eval loss {m['initial_eval_loss']:.4f} -> {m['final_eval_loss']:.4f}"
            if m["final_eval_loss"] is not None
            else ""
        )
    )
    click.echo(_saved_line(result.saved, result.out))


@click.command("train-dpo")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--db", "votes", type=click.Path(dir_okay=False, path_type=Path), default="votes.sqlite",
    show_default=True, help="The vote database of `diffcap review`.",
)  # fmt: skip
@_common
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=5e-6, show_default=True,
              help="Peak learning rate.")  # fmt: skip
@click.option("--beta", type=click.FloatRange(0, min_open=True), default=0.1, show_default=True,
              help="DPO beta (strength of the pull towards the SFT model).")  # fmt: skip
@click.option(
    "--task", type=click.Choice(["fast", "summary"]), default="fast", show_default=True,
    help="The prompt the summaries answer: the keyframe grid or slide mode's timeline.",
)  # fmt: skip
@click.option(
    "--prompt-run", type=click.Path(exists=True, path_type=Path),
    help="Run whose keyframes/timeline build the prompts [the first RUN].",
)  # fmt: skip
@click.pass_context
def train_dpo(ctx: click.Context, runs: tuple[Path, ...], **o: Any) -> None:
    """Preference-tune a captioner (DPO) on `diffcap review` votes between RUNS."""
    from diffcap.train.dpo import DPOOptions, train_dpo  # lazy: start-up

    quiet = bool((ctx.obj or {}).get("quiet"))
    _quiet_libraries(quiet)
    prompt_run = o.pop("prompt_run")
    opts = DPOOptions(
        runs=tuple(str(r) for r in runs),
        prompt_run=str(prompt_run) if prompt_run else None,
        lora=_lora(o),
        max_steps=o.pop("max_steps") or -1,
        progress=not quiet,
        **o,
    )
    result = train_dpo(opts)
    m = result.metrics
    click.echo(
        f"DPO: {m['steps']} steps on {m['train_samples']} pairs in {m['seconds']:.1f} s: "
        f"chosen-minus-rejected log-prob margin {m['initial_margin']:.3f} -> "
        f"{m['final_margin']:.3f} ({m['pairs']['ties']} ties dropped)"
    )
    click.echo(_saved_line(result.saved, result.out))


def _saved_line(saved: dict[str, str], out: Path) -> str:
    what = ", ".join(f"{k} in {v}" for k, v in saved.items())
    return f"saved {what}; metrics in {out / 'train_metrics.json'}, model card {out / 'README.md'}"
