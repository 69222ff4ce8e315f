"""``diffcap eval`` and ``diffcap eval-compare``: thin shells over :mod:`diffcap.eval`.

Every RunConfig field is a flag (as for ``diffcap run``): the model under test is
``--model``/``--api-base``/``--backend``, and the same settings caption the videos when the
caption input needs a diffcap run first.

    diffcap eval mvbench --data MVBench/json --videos MVBench/video --model M \\
        --api-base http://127.0.0.1:8000/v1 --input grid --out evals/mv
    diffcap eval dream1k --data DREAM-1k.jsonl --captions runs/dream --judge-model gpt-4o \\
        --out evals/dream
    diffcap eval-compare evals/a evals/b
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from diffcap.cli.options import ALL_FIELDS, config_from_params, config_options
from diffcap.eval.inputs import INPUT_MODES
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
@click.option("--videos", type=click.Path(file_okay=False), help="Folder of the videos.")
@click.option(
    "--captions",
    type=click.Path(),
    help="Captions to use: a diffcap run dir or records .jsonl (caption input).",
)
@click.option(
    "--input",
    "input_mode",
    type=click.Choice(list(INPUT_MODES)),
    help="What the model sees: grid (16 frames 4x4, the paper's 8B model), frames (N "
    "uniform), keyframes (diffcap's), caption (a text model answers from the caption) "
    "[caption for dream1k/vdc, else grid].",
)
@click.option(
    "--num-frames",
    type=click.IntRange(1, 256),
    default=16,
    show_default=True,
    help="Frames for --input frames.",
)
@click.option(
    "--judge-model",
    help="Judge model, any OpenAI-compatible one (dream1k, vdc; tempcompass: the answers no "
    "rule reads).",
)
@click.option("--judge-api-base", help="Judge base URL [the --api-base].")
@click.option(
    "--judge-api-key",
    envvar="DIFFCAP_JUDGE_API_KEY",
    help="Judge API key [env DIFFCAP_JUDGE_API_KEY, else OPENAI_API_KEY].",
)
@click.option("--answer-model", help="Text model answering from captions [--model].")
@click.option("--answer-api-base", help="Its base URL [--api-base].")
@click.option(
    "--subtitles",
    type=click.Path(file_okay=False),
    help="videomme: the folder of <videoID>.srt subtitles (the 'w/ subs' setting).",
)
@click.option(
    "--prompts",
    type=click.Path(),
    help="The benchmark's own prompt file diffcap does not ship (tempcompass: "
    "prompt_templates.py) [found beside --data].",
)
@click.option(
    "--prefill",
    type=click.Choice(["auto", "assistant", "user"]),
    default="auto",
    show_default=True,
    help="Where an official answer prefill goes (mvbench's 'Best option:('): the start of the "
    "model's reply (assistant; OpenAI-compatible servers that continue a final assistant "
    "message, e.g. vLLM), or the end of the question (user); auto: assistant for "
    "--backend transformers, else user.",
)
@click.option(
    "--official-quirks",
    is_flag=True,
    help="Score exactly as the official code, quirks diffcap corrects included (see "
    "docs/eval.md).",
)
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N items.")
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of VDC's caption prompt choice."
)
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
    spec = EvalSpec(
        bench=bench,
        data=Path(params.pop("data")),
        out=Path(out),
        input_mode=params.pop("input_mode"),
        videos=_path(params.pop("videos")),
        captions=_path(params.pop("captions")),
        limit=params.pop("limit"),
        n_frames=params.pop("num_frames"),
        seed=params.pop("seed"),
        judge_model=params.pop("judge_model"),
        judge_api_base=params.pop("judge_api_base"),
        judge_api_key=params.pop("judge_api_key"),
        answer_model=params.pop("answer_model"),
        answer_api_base=params.pop("answer_api_base"),
        subtitles=_path(params.pop("subtitles")),
        prompts=_path(params.pop("prompts")),
        prefill=params.pop("prefill"),
        official_quirks=params.pop("official_quirks"),
    )
    if spec.judge_api_key:
        register_secret(spec.judge_api_key)
    cfg = config_from_params(params)
    quiet = bool((ctx.obj or {}).get("quiet"))
    report = run_eval(spec, cfg, progress=not (no_progress or quiet))
    if as_json:
        data = {**report.__dict__, "out": str(report.out), "exit_code": report.exit_code}
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(report.format())
    if report.exit_code:
        raise SystemExit(report.exit_code)


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


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
