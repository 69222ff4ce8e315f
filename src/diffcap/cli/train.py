"""``diffcap train`` and ``diffcap train-dpo``: thin shells over :mod:`diffcap.train`.

    diffcap train runs/teacher --model llava-hf/llava-interleave-qwen-0.5b-hf --out models/cap
    diffcap train runs/teacher --model BASE --out models/cap --method lora --merge --max-steps 500
    diffcap train-dpo runs/gpt4v runs/local --db votes.sqlite --model models/cap \\
        --out models/cap-dpo

The training settings are the ``train`` and ``dpo`` config sections
(:class:`diffcap.config.TrainConfig`, :class:`diffcap.config.DPOConfig`): the flags are
generated from them, and ``--config train.yaml`` (``train:`` / ``dpo:`` mappings) or ``--set
train.KEY=VALUE`` set them too (typed flags win).

Needs the ``train`` extra (``pip install 'diffcap[train]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from diffcap.cli.options import stack_options
from diffcap.cli.sections import file_options, section_from_params, section_options
from diffcap.config import DPOConfig, TrainConfig
from diffcap.errors import ConfigError

_invocation = stack_options(
    click.option("--model", required=True, help="Base model: hub id, model folder or adapter."),
    click.option(
        "--out", required=True, type=click.Path(file_okay=False, path_type=Path),
        help="Output folder (checkpoints, metrics, model card, the trained model).",
    ),
)  # fmt: skip
#: A --config file for either command may hold both sections.
_SECTIONS = ("train", "dpo")


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


@click.command()
@click.argument("data", nargs=-1, required=True, type=click.Path(path_type=Path))
@_invocation
@section_options(TrainConfig, "train")
@file_options("train")
@click.pass_context
def train(ctx: click.Context, data: tuple[Path, ...], **o: Any) -> None:
    """Fine-tune a vision-language model on diffcap captions (DATA: run directories,
    exports, or ShareGPT4Video-style JSONL)."""
    from diffcap.train.sft import TrainOptions, train_sft  # lazy: start-up

    quiet = bool((ctx.obj or {}).get("quiet"))
    _quiet_libraries(quiet)
    tcfg = section_from_params(TrainConfig, "train", o, others=_SECTIONS)
    _no_other_sets(o, "train")
    opts = TrainOptions(
        **tcfg.model_dump(),
        data=tuple(str(d) for d in data),
        model=o["model"],
        out=o["out"],
        progress=not quiet,
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
@_invocation
@section_options(DPOConfig, "dpo")
@file_options("dpo")
@click.pass_context
def train_dpo(ctx: click.Context, runs: tuple[Path, ...], **o: Any) -> None:
    """Preference-tune a captioner (DPO) on `diffcap review` votes between RUNS."""
    from diffcap.train.dpo import DPOOptions, train_dpo  # lazy: start-up

    quiet = bool((ctx.obj or {}).get("quiet"))
    _quiet_libraries(quiet)
    dcfg = section_from_params(DPOConfig, "dpo", o, others=_SECTIONS)
    _no_other_sets(o, "dpo")
    opts = DPOOptions(
        **dcfg.model_dump(),
        votes=o["votes"],
        runs=tuple(str(r) for r in runs),
        model=o["model"],
        out=o["out"],
        progress=not quiet,
    )
    result = train_dpo(opts)
    m = result.metrics
    click.echo(
        f"DPO: {m['steps']} steps on {m['train_samples']} pairs in {m['seconds']:.1f} s: "
        f"chosen-minus-rejected log-prob margin {m['initial_margin']:.3f} -> "
        f"{m['final_margin']:.3f} ({m['pairs']['ties']} ties dropped)"
    )
    click.echo(_saved_line(result.saved, result.out))


def _no_other_sets(o: dict[str, Any], section: str) -> None:
    """``--set`` keys outside the command's section are errors that name the key."""

    for item in o.get("assignments") or ():
        key = item.partition("=")[0].strip()
        raise ConfigError(
            f"--set {item!r}: unknown config key '{key}'",
            hint=f"this command's settings are {section}.KEY (see --help)",
        )


def _saved_line(saved: dict[str, str], out: Path) -> str:
    what = ", ".join(f"{k} in {v}" for k, v in saved.items())
    return f"saved {what}; metrics in {out / 'train_metrics.json'}, model card {out / 'README.md'}"
