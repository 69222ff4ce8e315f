"""``diffcap caption`` / ``summarize`` / ``recaption``: thin shells over diffcap.captioning.

    diffcap caption a.mp4 b.mp4 --out captions.jsonl --api-base http://127.0.0.1:8000/v1
    diffcap summarize captions.jsonl --video-id a --start 2 --end 8
    diffcap recaption "a corgi runs on a beach" "rain on a window" > dense.jsonl

Exit codes: 0 all done; 1 an error, or some videos/prompts failed (see the failures file);
2 bad usage; 3 no model could be reached (``caption`` still extracted the keyframes).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from diffcap.cli.options import (
    CAPTION_OPTIONS,
    MODEL_OPTIONS,
    build_config,
    caption_options,
    model_options,
)
from diffcap.config import RunConfig
from diffcap.errors import ModelUnavailable

#: Exit code when no model is reachable (documented in docs/captioning.md).
EXIT_NO_MODEL = 3


def _templates(cfg: RunConfig) -> Any:
    from diffcap.prompts import load_templates

    return load_templates(cfg.caption.prompt_preset, cfg.caption.templates or None)


def _backend(cfg: RunConfig) -> Any:
    """The backend, or raise ModelUnavailable (no key, no server, no local weights)."""
    from diffcap.models import get_backend

    return get_backend(cfg.model.backend, cfg.model)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _no_model_exit(exc: ModelUnavailable, done: str = "") -> None:
    click.echo(_one_line(f"error: {done}no model to caption with: {exc}"), err=True)
    sys.exit(EXIT_NO_MODEL)


@click.command()
@click.argument("videos", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Records file (JSONL), rewritten; keyframes go to <stem>.keyframes/.",
)
@caption_options
@model_options
@click.pass_context
def caption(ctx: click.Context, videos: tuple[Path, ...], out: Path, **options: Any) -> None:
    """Caption videos into OUT (one JSON record per video), DiffSW by default."""
    from diffcap.captioning import CaptionRunner

    cfg = build_config(options, {**MODEL_OPTIONS, **CAPTION_OPTIONS})
    templates = _templates(cfg)
    unavailable: ModelUnavailable | None = None
    backend = None
    try:
        backend = _backend(cfg)
    except ModelUnavailable as exc:
        unavailable = exc  # still extract the keyframes, then say how to get a model
    quiet = bool((ctx.obj or {}).get("quiet"))
    runner = CaptionRunner(cfg, backend, out, templates, progress=not quiet)
    result = asyncio.run(_run_and_close(runner, list(videos), backend))
    unavailable = unavailable or result.unavailable
    if unavailable is not None:
        n = result.videos - len(result.failures)
        _no_model_exit(unavailable, f"keyframes of {n} video(s) are in {runner.keyframes_dir}; ")
    click.echo(result.summary_line())
    if result.failures:
        click.echo(f"{len(result.failures)} video(s) failed: see {runner.failures_path}", err=True)
        sys.exit(1)


async def _run_and_close(runner: Any, videos: list[Path], backend: Any) -> Any:
    try:
        return await runner.run(videos)
    finally:
        if backend is not None:
            await backend.aclose()


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
    from diffcap.captioning import summarize_clip
    from diffcap.captioning.text import captions_in_range, load_record
    from diffcap.timeline import Usage, VideoRecord

    cfg = build_config(options, MODEL_OPTIONS)
    record = load_record(records, video_id)
    inside = captions_in_range(record, start, end)  # fail before reaching for a model
    templates = _templates(cfg)
    try:
        backend = _backend(cfg)
    except ModelUnavailable as exc:
        _no_model_exit(exc)
    usage = Usage()

    async def go() -> Any:
        try:
            return await summarize_clip(
                record, start, end, backend, templates, model_cfg=cfg.model, usage=usage
            )
        finally:
            await backend.aclose()

    try:
        clip = asyncio.run(go())
    except ModelUnavailable as exc:
        _no_model_exit(exc)
    if not as_json:
        click.echo(clip.content)
        return
    from diffcap.captioning.core import provenance

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
    cfg = build_config(options, MODEL_OPTIONS)
    templates = _templates(cfg)
    try:
        backend = _backend(cfg)
    except ModelUnavailable as exc:
        _no_model_exit(exc)
    try:
        rows = asyncio.run(_recaption_all(texts, backend, templates, cfg))
    except ModelUnavailable as exc:
        _no_model_exit(exc)
    for row in rows:
        click.echo(json.dumps(row, ensure_ascii=False))
    if any("error" in r for r in rows):
        sys.exit(1)


async def _recaption_all(
    texts: list[str], backend: Any, templates: Any, cfg: RunConfig
) -> list[dict[str, Any]]:
    from diffcap.captioning import recaption as recaption_one
    from diffcap.captioning import recaption_provenance
    from diffcap.errors import DiffcapError

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
