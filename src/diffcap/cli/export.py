"""``diffcap export``: a thin shell over :func:`diffcap.export.export`.

    diffcap export runs/demo --format sharegpt4video --out sg4v.jsonl
    diffcap export captions.jsonl --format llava --tasks slide,fast --out train/llava.json
    diffcap export runs/demo --format clips --window 4 --stride 2 --out clips.jsonl \\
        --api-base http://127.0.0.1:8000/v1
    diffcap export runs/demo --format chapters --out chapters/   # <video_id>.vtt + .txt

Exit status: 0 when anything was exported (records skipped for a missing video etc. are
counted in the summary line), 1 when records were read but not one item could be written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from diffcap.cli.options import config_from_params, model_options
from diffcap.export import ExportOptions
from diffcap.export import export as run_export
from diffcap.export.base import ALL_TASKS, FORMATS, LLAVA_TASKS


def parse_tasks(value: str) -> tuple[str, ...]:
    tasks = tuple(t.strip() for t in value.split(",") if t.strip())
    bad = [t for t in tasks if t not in ALL_TASKS]
    if bad or not tasks:
        raise click.BadParameter(f"{','.join(bad) or value!r}: choose from {','.join(ALL_TASKS)}")
    return tasks


@click.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format", "fmt", required=True, type=click.Choice(list(FORMATS)), help="Output format."
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output file (images go next to it in <stem>_images/); chapters: a folder.",
)
@click.option("--absolute-paths", is_flag=True, help="Write absolute image/video paths.")
@click.option(
    "--tasks",
    default=",".join(LLAVA_TASKS),
    show_default=True,
    help="llava, llamafactory, swift, qwenvl: tasks (comma-separated; `summary` too).",
)
@click.option(
    "--pair-layout",
    type=click.Choice(["composite", "two_images"]),
    default="composite",
    show_default=True,
    help="llava slide: how a pair is shown.",
)
@click.option(
    "--fast-layout",
    type=click.Choice(["grid", "strip"]),
    default="grid",
    show_default=True,
    help="llava fast: tiled grid or vertical strip.",
)
@click.option(
    "--fast-max-frames",
    type=click.IntRange(1),
    default=30,
    show_default=True,
    help="llava fast: keyframes in the tiled image.",
)
@click.option(
    "--clip-captions",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="llava clip: a `--format clips` output to train clip summary on.",
)
@click.option(
    "--grid-question",
    default="Describe this video in detail.",
    show_default=True,
    help="grid: the question after the fixed pre-prompt.",
)
@click.option(
    "--window",
    type=click.IntRange(1),
    default=4,
    show_default=True,
    help="clips: keyframes per clip.",
)
@click.option(
    "--stride",
    type=click.IntRange(1),
    default=2,
    show_default=True,
    help="clips: keyframes between clip starts.",
)
@model_options
@click.pass_context
def export(ctx: click.Context, source: Path, fmt: str, out: Path, **options: Any) -> None:
    """Export the records of a run directory or records JSONL file (SOURCE)."""
    quiet = bool((ctx.obj or {}).get("quiet"))
    if out.is_dir() and fmt != "chapters":
        raise click.BadParameter(
            f"{out} is a folder; --format {fmt} writes a file", param_hint="--out"
        )
    if options.get("config_path") is None and (source / "config.yaml").is_file():
        # The run's own model settings, so clip requests hit its request cache.
        options["config_path"] = str(source / "config.yaml")
    cfg = config_from_params(options)
    opts = ExportOptions(
        absolute_paths=options["absolute_paths"],
        progress=not quiet,
        tasks=parse_tasks(options["tasks"]),
        prompt_preset=cfg.caption.prompt_preset,
        templates=dict(cfg.caption.templates),
        pair_layout=options["pair_layout"],
        fast_layout=options["fast_layout"],
        fast_max_frames=options["fast_max_frames"],
        image_max_side=cfg.model.image_max_side,
        clip_captions=options["clip_captions"],
        grid_question=options["grid_question"],
        window=options["window"],
        stride=options["stride"],
        model=cfg.model,
    )
    result = run_export(source, fmt, out, opts)
    click.echo(result.line())
    if result.nothing_exported:
        # Some records exported while others were skipped is a success (the line says what was
        # skipped); records read but nothing written is not.
        click.echo(f"error: nothing exported from {result.records} record(s) to {out}", err=True)
        ctx.exit(1)
