"""``diffcap eval`` and ``diffcap eval-compare``: thin shells over :mod:`diffcap.eval`.

Every RunConfig field is a flag (as for ``diffcap run``): the model under test is
``--model``/``--api-base``/``--backend``, and the same settings caption the videos when the
caption input needs a diffcap run first.

    diffcap eval mvbench --data MVBench/json --videos MVBench/video --model M \\
        --api-base http://127.0.0.1:8000/v1 --input grid --out evals/mv
    diffcap eval dream1k --data DREAM-1k.jsonl --captions runs/dream --judge-model gpt-4o \\
        --out evals/dream
    diffcap eval-compare evals/a evals/b

The eval's own settings are the ``eval`` config section (:class:`diffcap.config.EvalConfig`):
their flags are generated from it, and a ``--config`` YAML's ``eval:`` mapping or ``--set
eval.KEY=VALUE`` sets them too (typed flags win).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from diffcap.cli.options import ALL_FIELDS, config_from_params, config_options
from diffcap.cli.sections import section_from_params, section_options
from diffcap.config import EvalConfig
from diffcap.eval.registry import BENCHMARKS
from diffcap.eval.run import EvalSpec, run_eval
from diffcap.redact import register_secret


@click.command("eval", context_settings={"max_content_width": 100})
@click.argument("bench", type=click.Choice(list(BENCHMARKS)))
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=False),
    help="The benchmark's official file or folder, or hf:ORG/NAME[/PATH] of a Hugging Face "
    "dataset (see docs/eval.md).",
)
@section_options(EvalConfig, "eval")
@click.option(
    "--out",
    "-o",
    "out",
    required=True,
    type=click.Path(file_okay=False),
    help="Eval directory (created; rerun the same command to resume).",
)
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@config_options(ALL_FIELDS)
@click.pass_context
def eval_cmd(
    ctx: click.Context, bench: str, out: str, no_progress: bool, as_json: bool, **params: Any
) -> None:
    """Score a model (or captions) on a benchmark: dream1k, vdc (caption quality, judged),
    tempcompass, mvbench, videomme (video QA, official answer extraction).

    Writes OUT/scores.json, OUT/predictions.jsonl and OUT/<bench>.png. Resumable: a rerun
    replays finished model and judge calls. Exit codes as `diffcap run`: 0 done, 2 bad usage
    or benchmark file, 3 no usable model, 4 stopped (rerun to resume).
    """

    ecfg = section_from_params(EvalConfig, "eval", params)
    spec = EvalSpec(
        bench=bench,
        data=Path(params.pop("data")),
        out=Path(out),
        **{name: getattr(ecfg, name) for name in EvalConfig.model_fields},
    )
    if spec.judge_api_key:
        register_secret(spec.judge_api_key)
    cfg = config_from_params(params, sections=("eval",))
    quiet = bool((ctx.obj or {}).get("quiet"))
    report = run_eval(spec, cfg, progress=not (no_progress or quiet))
    if as_json:
        data = {**report.__dict__, "out": str(report.out), "exit_code": report.exit_code}
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(report.format())
    if report.exit_code:
        raise SystemExit(report.exit_code)


@click.command("eval-compare")
@click.argument("dirs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True))
@click.option(
    "--samples",
    type=click.IntRange(100, 1_000_000),
    default=2000,
    show_default=True,
    help="Bootstrap resamples.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def eval_compare(dirs: tuple[str, ...], samples: int, seed: int, as_json: bool) -> None:
    """Compare evals of one benchmark: the first DIR is the baseline A; for each other B, the
    headline number of both over their shared items and the paired bootstrap 95% interval
    of B - A."""
    from diffcap.eval.compare import compare, format_table  # lazy: start-up

    rows = compare([Path(d) for d in dirs], n=samples, seed=seed)
    if as_json:
        click.echo(json.dumps([r.to_json() for r in rows], indent=2))
    else:
        click.echo(format_table(rows))
