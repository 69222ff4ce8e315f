"""``diffcap run`` and ``diffcap status``: thin shells over :mod:`diffcap.pipeline`.

Every RunConfig field is a flag, generated from config.py (``--keyframes-interval``,
``--model-concurrency``, ...), with short aliases for the common ones (``--interval``,
``--concurrency``). Precedence: ``--preset`` < ``--config`` YAML < ``--set`` < flags.

    diffcap run videos/ --out runs/demo --preset fast-cheap --api-base http://127.0.0.1:8000/v1
    diffcap status runs/demo --json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from diffcap.cli.options import ALL_FIELDS, config_from_params, config_options
from diffcap.config import RunConfig
from diffcap.redact import redact, redact_data
from diffcap.store.rundir import RunDir


def execute(
    ctx: click.Context,
    command: str,
    inputs: list[str],
    run_dir: Path,
    cfg: RunConfig,
    *,
    retry_failed: bool = False,
    no_progress: bool = False,
    records_file: Path | None = None,
    list_problems: bool = False,
) -> Any:
    """Run ``command``'s pipeline; returns the report (the caller prints and exits);
    ``records_file``, ``list_problems``: see ``run_dataset``."""
    from diffcap.pipeline.runner import run_dataset  # lazy: start-up

    if not inputs and not RunDir(run_dir).has_store():
        raise click.UsageError("give at least one INPUT (or --out of an existing run to resume)")
    quiet = bool((ctx.obj or {}).get("quiet"))
    return run_dataset(
        inputs,
        run_dir,
        cfg,
        command=command,
        retry_failed=retry_failed,
        progress=not (no_progress or quiet),
        records_file=records_file,
        list_problems=list_problems,
    )


def finish(report: Any, *, as_json: bool = False) -> None:
    """Print the report (redacted) and exit with its code: 0 only when every video is done
    or filtered (docs/runs.md, "Exit codes")."""
    text = json.dumps(redact_data(report.to_json()), indent=2) if as_json else report.format()
    click.echo(redact(text))
    code = report.exit_code
    if code:
        # SystemExit, not ctx.exit(): main() runs click with standalone_mode=False, which
        # turns ctx.exit's code into an ignored return value.
        raise SystemExit(code)


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
@click.option("--retry-failed", is_flag=True, help="Also retry videos that failed before.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the final report as JSON.")
@config_options(ALL_FIELDS)
@click.pass_context
def run(
    ctx: click.Context,
    inputs: tuple[str, ...],
    out: str,
    retry_failed: bool,
    no_progress: bool,
    as_json: bool,
    **params: Any,
) -> None:
    """Caption a dataset: INPUT... are video files, folders (recursive), globs, http(s) URLs
    or manifests (.csv/.jsonl/.parquet with a path or url column, optional start, end,
    video_id, caption).

    Resumable: rerun the same command after a crash; done videos are kept, finished model
    calls replayed. Exit codes: 0 every video done or filtered, 1 error or some videos
    failed (or bad inputs, or no video found), 2 bad usage or config, 3 no usable model,
    4 stopped with nothing lost, rerun to resume (--max-cost-usd reached, endpoint down,
    disk full, run directory in use),
    70 internal error (traceback in RUN_DIR/logs/errors.log), 130 interrupted, 143 stopped by
    SIGTERM (answers in flight kept). With no --preset or --config, a rerun starts from the
    run's saved config.yaml.
    """
    cfg = config_from_params(params, saved=RunDir(out).config)
    report = execute(
        ctx,
        "run",
        list(inputs),
        Path(out),
        cfg,
        retry_failed=retry_failed,
        no_progress=no_progress,
    )
    finish(report, as_json=as_json)


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--max-failures", type=int, default=50, show_default=True, help="Failures listed (0: all)."
)
def status(run_dir: str, as_json: bool, max_failures: int) -> None:
    """Show a run's counts per status, failures with reasons, tokens and estimated cost."""
    from diffcap.pipeline.status import format_status, run_status  # lazy: start-up

    st = redact_data(run_status(run_dir, max_failures=max_failures or None))
    click.echo(json.dumps(st, indent=2, default=str) if as_json else format_status(st))
