"""``diffcap run`` and ``diffcap status``: a thin shell over :mod:`diffcap.pipeline`.

Every RunConfig field is a flag, generated from config.py (``--keyframes-interval``,
``--model-concurrency``, ...), with short aliases for the common ones (``--interval``,
``--concurrency``). Precedence: flags > ``--config`` YAML > ``--preset``.

    diffcap run videos/ --out runs/demo --preset fast-cheap --api-base http://127.0.0.1:8000/v1
    diffcap status runs/demo --json
"""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Any, Literal

import click

from diffcap.config import RunConfig

#: Short aliases for the flags people type most.
ALIASES: dict[str, str] = {
    "engine.engine": "--engine",
    "engine.workers": "--workers",
    "engine.max_cost_usd": "--max-cost-usd",
    "engine.ray_address": "--ray-address",
    "model.backend": "--backend",
    "model.model": "--model",
    "model.api_base": "--api-base",
    "model.api_key": "--api-key",
    "model.concurrency": "--concurrency",
    "model.max_tokens": "--max-tokens",
    "caption.mode": "--mode",
    "caption.prompt_preset": "--prompt-preset",
    "keyframes.embedder": "--embedder",
    "keyframes.interval": "--interval",
    "keyframes.threshold": "--threshold",
    "keyframes.max_keyframes": "--max-keyframes",
    "filter.min_duration": "--min-duration",
    "filter.max_duration": "--max-duration",
    "filter.dedup": "--dedup",
    "filter.dedup_threshold": "--dedup-threshold",
    "output.shard_size": "--shard-size",
    "input.download_dir": "--download-dir",
}


def _click_type(annotation: Any) -> tuple[Any, bool, bool]:
    """(click type, is_flag, multiple) for a pydantic field annotation."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _click_type(args[0])
    if origin is Literal:
        return click.Choice([str(a) for a in typing.get_args(annotation)]), False, False
    if origin is list:
        return str, False, True
    if annotation is bool:
        return bool, True, False
    if annotation in (int, float, str):
        return annotation, False, False
    return None, False, False  # dicts and other shapes: use --set


def config_options(func: Any) -> Any:
    """Decorate ``func`` with one option per RunConfig field (param name ``section__key``)."""
    for section, sfield in reversed(list(RunConfig.model_fields.items())):
        model = sfield.annotation
        for key, field in reversed(list(model.model_fields.items())):
            ctype, is_flag, multiple = _click_type(field.annotation)
            if ctype is None:
                continue
            dotted = f"{section}.{key}"
            long = f"--{section}-{key}".replace("_", "-")
            names = [long] + ([ALIASES[dotted]] if dotted in ALIASES else [])
            if is_flag:
                names = [f"{n}/--no-{n[2:]}" for n in names]
            helptext = f"[{dotted}]" + (" (never saved)" if key == "api_key" else "")
            func = click.option(
                *names,
                f"{section}__{key}",
                type=None if is_flag else ctype,
                default=None,
                multiple=multiple,
                help=helptext,
                show_default=False,
            )(func)
    return func


def overrides_from_flags(params: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in params.items():
        if "__" not in name or value is None or value == ():
            continue
        section, key = name.split("__", 1)
        out[f"{section}.{key}"] = list(value) if isinstance(value, tuple) else value
    return out


@click.command(context_settings={"max_content_width": 100})
@click.argument("inputs", nargs=-1)
@click.option(
    "--out",
    "-o",
    "out",
    required=True,
    type=click.Path(file_okay=False),
    help="Run directory (created; rerun the same command to resume).",
)
@click.option("--preset", help="Named config preset shipped with diffcap (paper, fast-cheap, ...).")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, exists=True),
    help="YAML run config (sections: input, filter, keyframes, model, ...).",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Set any config field (repeatable); value parsed as YAML.",
)
@click.option("--retry-failed", is_flag=True, help="Also retry videos that failed before.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the final report as JSON.")
@config_options
@click.pass_context
def run(
    ctx: click.Context,
    inputs: tuple[str, ...],
    out: str,
    preset: str | None,
    config_path: str | None,
    assignments: tuple[str, ...],
    retry_failed: bool,
    no_progress: bool,
    as_json: bool,
    **flags: Any,
) -> None:
    """Caption a dataset: INPUT... are video files, folders (recursive), globs, http(s) URLs
    or manifests (.csv/.jsonl/.parquet with a path or url column, optional start, end,
    video_id, caption).

    Resumable: rerun the same command after a crash; done videos are kept, finished model
    calls replayed. Exit codes: 0 finished (failed videos are listed, not fatal),
    1 error, 2 bad usage, 3 stopped by --max-cost-usd (rerun with a higher cap to go on).
    """
    from diffcap.pipeline.configure import parse_set, resolve_config
    from diffcap.pipeline.runner import EXIT_BUDGET, run_dataset

    overrides = overrides_from_flags(flags)
    overrides.update(parse_set(list(assignments)))
    cfg = resolve_config(preset, config_path, overrides)
    run_dir = Path(out)
    if not inputs and not (run_dir / "run.sqlite").is_file():
        raise click.UsageError("give at least one INPUT (or --out of an existing run to resume)")
    quiet = bool((ctx.obj or {}).get("quiet"))
    report = run_dataset(
        list(inputs), run_dir, cfg, retry_failed=retry_failed, progress=not (no_progress or quiet)
    )
    click.echo(json.dumps(report.to_json(), indent=2) if as_json else report.format())
    if report.stopped_by_budget:
        # SystemExit, not ctx.exit(): main() runs click with standalone_mode=False, which
        # turns ctx.exit's code into an ignored return value.
        raise SystemExit(EXIT_BUDGET)


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--max-failures", type=int, default=50, show_default=True, help="Failures listed (0: all)."
)
def status(run_dir: str, as_json: bool, max_failures: int) -> None:
    """Show a run's counts per status, failures with reasons, tokens and estimated cost."""
    from diffcap.pipeline.report import format_status, run_status

    st = run_status(run_dir, max_failures=max_failures or None)
    click.echo(json.dumps(st, indent=2, default=str) if as_json else format_status(st))
