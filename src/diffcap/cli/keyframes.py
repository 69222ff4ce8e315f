"""``diffcap keyframes VIDEO... --out DIR``: semantic-aware keyframes, the pipeline's
``prepare -> keyframes`` stages over a run directory.

    diffcap keyframes a.mp4 b.mkv --out kf/                  # weightless, every 2 s
    diffcap keyframes talk.mp4 --out kf/ --embedder clip:/models/clip-l-336 --interval 1
    diffcap -q keyframes *.mp4 --out kf/ --max-keyframes 12 --format png

Writes ``DIR/keyframes/<video_id>/keyframes.json`` plus the images, and the run's records
(keyframes only) and failures like ``diffcap run``; rerun to resume. One bad video never
stops the batch: failures are listed and the exit status is 1 when any video failed in this
invocation (filtered videos, e.g. shorter than ``--min-duration``, are listed but do not
fail the run; damaged videos whose readable part got keyframes are done, with a warning).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from diffcap.cli.options import KEYFRAMES_FIELDS, config_from_params, config_options
from diffcap.cli.run import execute, finish
from diffcap.store.rundir import RunDir


@click.command("keyframes")
@click.argument("videos", nargs=-1, required=True)
@click.option(
    "--out",
    "-o",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Run directory: keyframes in DIR/keyframes/<video_id>/ (rerun to resume).",
)
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the final report as JSON.")
@config_options(KEYFRAMES_FIELDS)
@click.pass_context
def keyframes(
    ctx: click.Context,
    videos: tuple[str, ...],
    out: Path,
    no_progress: bool,
    as_json: bool,
    **params: Any,
) -> None:
    """Select semantic-aware keyframes of VIDEO... and write them under --out."""
    cfg = config_from_params(params, saved=RunDir(out).config)
    report = execute(
        ctx, "keyframes", list(videos), out, cfg, no_progress=no_progress, list_problems=True
    )
    if report.failed_now or report.filtered_now or report.bad_inputs_now:
        for line in _outcome_lines(report.problems):
            click.echo(line, err=True)
    finish(report, as_json=as_json)


def _outcome_lines(problems: list[dict[str, Any]]) -> list[str]:
    """One line per failed or filtered video among this invocation's inputs, and per bad
    input of the run."""
    words = {"failed": "failed  ", "filtered": "filtered", "bad_input": "bad input"}
    return [f"{words[p['status']]} {p['source']} [{p['reason']}]: {p['error']}" for p in problems]
