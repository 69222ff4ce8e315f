"""``diffcap export``: a thin shell over :func:`diffcap.export.export`.

    diffcap export runs/demo --format sharegpt4video --out sg4v.jsonl
    diffcap export captions.jsonl --format llava --tasks slide,fast --out train/llava.json
    diffcap export runs/demo --format clips --window 4 --stride 2 --out clips.jsonl \\
        --api-base http://127.0.0.1:8000/v1
    diffcap export runs/demo --format chapters --out chapters/   # <video_id>.vtt + .txt

The export settings are the ``export`` config section (:class:`diffcap.config.ExportConfig`):
its flags are generated from it, and a ``--config`` YAML's ``export:`` mapping or ``--set
export.KEY=VALUE`` sets them too (typed flags win).

Exit status: 0 when anything was exported (records skipped for a missing video etc. are
counted in the summary line), 1 when records were read but not one item could be written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from diffcap.cli.options import config_from_params, model_options
from diffcap.cli.sections import section_from_params, section_options
from diffcap.config import ExportConfig
from diffcap.export import ExportOptions
from diffcap.export import export as run_export
from diffcap.export.base import FORMATS
from diffcap.store.rundir import RunDir


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
@section_options(ExportConfig, "export")
@model_options
@click.pass_context
def export(ctx: click.Context, source: Path, fmt: str, out: Path, **options: Any) -> None:
    """Export the records of a run directory or records JSONL file (SOURCE)."""
    quiet = bool((ctx.obj or {}).get("quiet"))
    if out.is_dir() and fmt != "chapters":
        raise click.BadParameter(
            f"{out} is a folder; --format {fmt} writes a file", param_hint="--out"
        )
    if options.get("config_path") is None and RunDir(source).config.is_file():
        # The run's own model settings, so clip requests hit its request cache.
        options["config_path"] = str(RunDir(source).config)
    ecfg = section_from_params(ExportConfig, "export", options)
    cfg = config_from_params(options, sections=("export",))
    opts = ExportOptions(
        **ecfg.model_dump(),
        progress=not quiet,
        prompt_preset=cfg.caption.prompt_preset,
        templates=dict(cfg.caption.templates),
        image_max_side=cfg.model.image_max_side,
        model=cfg.model,
    )
    result = run_export(source, fmt, out, opts)
    click.echo(result.line())
    if result.nothing_exported:
        # Some records exported while others were skipped is a success (the line says what was
        # skipped); records read but nothing written is not.
        click.echo(f"error: nothing exported from {result.records} record(s) to {out}", err=True)
        ctx.exit(1)
