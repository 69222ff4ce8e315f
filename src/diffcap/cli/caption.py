"""``diffcap caption`` / ``summarize`` / ``recaption``: thin shells over the library.

    diffcap caption a.mp4 b.mp4 --out captions.jsonl --api-base http://127.0.0.1:8000/v1
    diffcap summarize captions.jsonl --video-id a --start 2 --end 8
    diffcap recaption "a corgi runs on a beach" "rain on a window" > dense.jsonl

``caption`` is the pipeline's ``prepare -> keyframes -> caption`` stages (the same engine as
``diffcap run``) over a run directory beside the output: ``captions.jsonl`` gets
``captions.run/`` (run.sqlite, keyframes, failures), so a rerun resumes and finished model
calls are never paid twice. ``captions.jsonl`` is rewritten, under the run's lock, with the
records of the videos given this time (in their order); videos captioned by an earlier call
stay in the run directory (and its cache) but not in the file.

Exit codes: 0 all done; 1 an error, or some videos/prompts failed (see the failures file);
2 bad usage; 3 no usable model (not configured, unreachable, not found); 4, 70 and 130 as for
``diffcap run``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from diffcap.cli.options import (
    ALL_FIELDS,
    checked_backend,
    config_from_params,
    config_options,
    model_options,
)
from diffcap.cli.run import execute, finish
from diffcap.config import RunConfig
from diffcap.errors import DiffcapError, ModelUnavailable
from diffcap.hints import command
from diffcap.store.rundir import RunDir


def _templates(cfg: RunConfig) -> Any:
    from diffcap.prompts import load_templates  # lazy: start-up

    return load_templates(cfg.caption.prompt_preset, cfg.caption.templates or None)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def run_dir_for(out: Path) -> Path:
    """``captions.jsonl`` -> ``captions.run/`` beside it (the run directory of ``caption``)."""
    return RunDir.beside(out).root


@click.command()
@click.argument("videos", nargs=-1)
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Records file (JSONL), rewritten from the run directory <stem>.run/ beside it.",
)
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option(
    "--live",
    "live_source",
    metavar="SOURCE",
    help="Caption a live stream as it plays (HLS .m3u8 URL, rtsp:// URL, or a file still "
    "being written); captions are appended to OUT as JSON lines. See docs/live.md.",
)
@click.option("--for", "live_for", metavar="DURATION", help="--live: stop after 90s, 10m, 1h.")
@click.option("--json", "live_json", is_flag=True, help="--live: print each line as JSON.")
@click.option(
    "--live-queue",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="--live: keyframes that may wait for the model (the oldest is skipped when full).",
)
@click.option("--summary-every", metavar="DURATION", help="--live: rolling summary period (5m).")
@click.option("--from-start", is_flag=True, help="--live HLS: start at the first segment.")
@click.option(
    "--rtsp-listen", is_flag=True, help="--live rtsp://HOST:PORT/PATH: wait for a publisher."
)
@config_options(ALL_FIELDS)
@click.pass_context
def caption(
    ctx: click.Context, videos: tuple[str, ...], out: Path, no_progress: bool, **params: Any
) -> None:
    """Caption VIDEO... into OUT (one JSON record per video), DiffSW by default. Files,
    folders, globs, URLs and manifests are accepted, as by `diffcap run`. With --live
    SOURCE, caption a live stream as it plays instead."""
    live = {k: params.pop(k) for k in list(params) if k.startswith("live_")}
    live_opts = {k: params.pop(k) for k in ("summary_every", "from_start", "rtsp_listen")}
    cfg = config_from_params(params, saved=RunDir.beside(out).config)
    if live["live_source"]:
        if videos:
            raise click.UsageError("give either VIDEO... or --live SOURCE, not both")
        from diffcap.cli.live import run_live  # lazy: start-up

        run_live(
            cfg, live["live_source"], out, duration=live["live_for"], as_json=live["live_json"],
            queue=live["live_queue"], **live_opts,
        )  # fmt: skip
        return
    if not videos:
        raise click.UsageError("give at least one VIDEO (or --live SOURCE)")
    run_dir = run_dir_for(out)
    report = execute(
        ctx, "caption", list(videos), run_dir, cfg, no_progress=no_progress, records_file=out
    )
    click.echo(f"records: {report.records_written} in {out} (run directory {run_dir})")
    if report.records_written:
        click.echo(f"look at them: {command('diffcap')} view {out} --open")
    if report.failed_now or report.bad_inputs_now:
        click.echo(
            f"{report.failed_now} video(s) failed, {report.bad_inputs_now} bad input(s): see "
            f"{run_dir / 'failures.jsonl'}",
            err=True,
        )
    finish(report)


@click.command()
@click.argument("records", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--video-id", help="Which record (optional when the file holds one).")
@click.option("--start", type=click.FloatRange(0), required=True, help="Clip start (s).")
@click.option("--end", type=float, required=True, help="Clip end (s).")
@click.option("--json", "as_json", is_flag=True, help="Print a record-like JSON object.")
@model_options
def summarize(
    records: Path, video_id: str | None, start: float, end: float, as_json: bool, **options: Any
) -> None:
    """Caption the clip [START, END] of a captioned video from its stored differential
    captions (no frame is decoded)."""
    from diffcap.captioning.text import (  # lazy: start-up
        captions_in_range,
        load_record,
        summarize_clip_tree,
    )
    from diffcap.timeline import Usage, VideoRecord  # lazy: start-up

    cfg = config_from_params(options)
    record = load_record(records, video_id)
    inside = captions_in_range(record, start, end)  # fail before reaching for a model
    templates = _templates(cfg)
    backend = checked_backend(cfg)  # ModelUnavailable: one line, exit 3 (cli.main)
    usage = Usage()

    async def go() -> Any:
        from diffcap.captioning.budget import build_budget  # lazy: start-up
        from diffcap.captioning.calls import generation_options  # lazy: start-up

        try:
            opts = generation_options(cfg.model, templates)
            budget = await build_budget(
                backend,
                cfg.model,
                max_tokens=int(opts.get("max_tokens", cfg.model.max_tokens)),
                images=False,
                probe=backend.agenerate,
            )
            return await summarize_clip_tree(
                record, start, end, backend, templates,
                model_cfg=cfg.model, usage=usage, budget=budget,
            )  # fmt: skip
        finally:
            await backend.aclose()

    clip, tree = asyncio.run(go())
    if not as_json:
        click.echo(clip.content)
        return
    from diffcap.captioning.core import provenance  # lazy: start-up

    times = {c.time for c in inside}
    out = VideoRecord(
        video_id=record.video_id,
        video_path=record.video_path,
        duration=record.duration,
        keyframes=[k for k in record.keyframes if k.time in times],
        captions=[*inside, clip],
        mode="clip_summary",
        provenance=provenance(backend, templates, backend.model, {"source": str(records)}),
        usage=usage,
        extra={"summary_tree": tree} if tree else {},
    )
    click.echo(json.dumps(out.to_json(), ensure_ascii=False))


@click.command()
@click.argument("prompts", nargs=-1)
@click.option(
    "--file",
    "prompt_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A text file with one prompt per line.",
)
@model_options
def recaption(prompts: tuple[str, ...], prompt_file: Path | None, **options: Any) -> None:
    """Expand short text-to-video prompts into dense captions; prints JSONL
    ({"prompt", "caption", "provenance"} or {"prompt", "error", "reason", "provenance"} per
    line, in input order; provenance names the template id@version, backend and model)."""
    texts = list(prompts)
    if prompt_file is not None:
        lines = prompt_file.read_text(encoding="utf-8").splitlines()
        texts += [line.strip() for line in lines if line.strip()]
    if not texts:
        raise click.UsageError("give at least one PROMPT or --file")
    cfg = config_from_params(options)
    templates = _templates(cfg)
    backend = checked_backend(cfg)  # ModelUnavailable: one line, exit 3 (cli.main)
    rows = asyncio.run(_recaption_all(texts, backend, templates, cfg))
    for row in rows:
        click.echo(json.dumps(row, ensure_ascii=False))
    if any("error" in r for r in rows):
        sys.exit(1)


async def _recaption_all(
    texts: list[str], backend: Any, templates: Any, cfg: RunConfig
) -> list[dict[str, Any]]:
    from diffcap.captioning import recaption as recaption_one  # lazy: start-up
    from diffcap.captioning import recaption_provenance  # lazy: start-up

    limiter = asyncio.Semaphore(cfg.model.concurrency)
    # Every line says what produced it, so a file of re-captions stays traceable.
    prov = recaption_provenance(backend, templates)

    async def one(text: str) -> dict[str, Any]:
        try:
            dense = await recaption_one(
                text, backend, templates, model_cfg=cfg.model, limiter=limiter
            )
        except ModelUnavailable:
            raise
        except DiffcapError as exc:
            return {
                "prompt": text,
                "error": _one_line(str(exc)),
                "reason": getattr(exc, "reason", "error"),
                "provenance": prov,
            }
        return {"prompt": text, "caption": dense, "provenance": prov}

    try:
        return list(await asyncio.gather(*(one(t) for t in texts)))
    finally:
        await backend.aclose()
