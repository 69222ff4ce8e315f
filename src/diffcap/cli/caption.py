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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml

from diffcap.config import RunConfig
from diffcap.errors import ConfigError, ModelUnavailable

#: Exit code when no model is reachable (documented in docs/captioning.md).
EXIT_NO_MODEL = 3

#: CLI option -> dotted RunConfig field (None values mean "not given").
MODEL_OPTIONS: dict[str, str] = {
    "backend": "model.backend",
    "model": "model.model",
    "api_base": "model.api_base",
    "api_key": "model.api_key",
    "concurrency": "model.concurrency",
    "timeout": "model.timeout_s",
    "max_retries": "model.max_retries",
    "max_tokens": "model.max_tokens",
    "num_beams": "model.num_beams",
    "temperature": "model.temperature",
    "image_max_side": "model.image_max_side",
    "detail": "model.detail",
    "device": "model.device",
    "model_batch_size": "model.batch_size",
    "prompt_preset": "caption.prompt_preset",
}
CAPTION_OPTIONS: dict[str, str] = {
    "mode": "caption.mode",
    "pair_layout": "caption.pair_layout",
    "fast_layout": "caption.fast_layout",
    "fast_max_frames": "caption.fast_max_frames",
    "fast_max_side": "caption.fast_max_side",
    "summary": "summary.enabled",
    "summary_model": "summary.model",
    "workers": "engine.workers",
    "embedder": "keyframes.embedder",
    "interval": "keyframes.interval",
    "threshold": "keyframes.threshold",
    "max_keyframes": "keyframes.max_keyframes",
    "start": "keyframes.start",
    "end": "keyframes.end",
    "min_duration": "keyframes.min_duration",
    "max_duration": "keyframes.max_duration",
    "skip_solid": "keyframes.skip_solid",
    "cut_keyframes": "keyframes.cut_keyframes",
    "image_format": "keyframes.image_format",
    "max_side": "keyframes.max_side",
    "jpeg_quality": "keyframes.jpeg_quality",
    "kf_batch_size": "keyframes.batch_size",
}


def _opts(*decorators: Callable) -> Callable:
    def apply(f: Callable) -> Callable:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


model_options = _opts(
    click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, exists=True),
        help="A run config YAML (the same file `diffcap run --config` reads).",
    ),
    click.option("--backend", help="Model backend: openai (default) or transformers."),
    click.option("--model", help="Model name or local model directory."),
    click.option("--api-base", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1."),
    click.option(
        "--api-key",
        envvar="DIFFCAP_API_KEY",
        help="API key (else $DIFFCAP_API_KEY, then $OPENAI_API_KEY).",
    ),
    click.option("--concurrency", type=click.IntRange(1), help="Requests in flight overall [8]."),
    click.option(
        "--timeout", type=click.FloatRange(0, min_open=True), help="Seconds per request [120]."
    ),
    click.option("--max-retries", type=click.IntRange(0), help="Retries per request [6]."),
    click.option("--max-tokens", type=click.IntRange(1), help="Max new tokens per answer."),
    click.option("--num-beams", type=click.IntRange(1), help="Beam search width."),
    click.option("--temperature", type=float, help="Sampling temperature."),
    click.option(
        "--image-max-side",
        type=click.IntRange(16),
        help="Longest side of images sent to the model [1024].",
    ),
    click.option(
        "--detail", type=click.Choice(["auto", "low", "high"]), help="OpenAI image detail."
    ),
    click.option("--device", help="transformers backend: cpu, cuda, cuda:1 ..."),
    click.option(
        "--model-batch-size",
        type=click.IntRange(1),
        help="transformers backend: requests per forward pass [8].",
    ),
    click.option("--prompt-preset", help="Template preset: diffcap (default), sharecaptioner."),
    click.option(
        "--template",
        "templates",
        multiple=True,
        metavar="NAME=PATH",
        help="Replace one template by a file (repeatable).",
    ),
)

caption_options = _opts(
    click.option("--mode", type=click.Choice(["slide", "fast"]), help="slide (default) or fast."),
    click.option(
        "--pair-layout",
        type=click.Choice(["auto", "two_images", "composite"]),
        help="How slide mode shows a frame pair [auto].",
    ),
    click.option(
        "--fast-layout", type=click.Choice(["grid", "strip"]), help="Fast mode tiling [grid]."
    ),
    click.option("--fast-max-frames", type=click.IntRange(1), help="Fast mode: frames [30]."),
    click.option(
        "--fast-max-side",
        type=click.IntRange(64),
        help="Fast mode: longest side of the tiled image [2048].",
    ),
    click.option(
        "--summary/--no-summary", default=None, help="Summarise the differential captions [on]."
    ),
    click.option("--summary-model", help="Model for the summary call [the caption model]."),
    click.option("--workers", type=click.IntRange(1), help="Keyframe extraction threads [2]."),
    click.option("--embedder", help="Keyframe embedder: weightless (default), clip:<dir>..."),
    click.option(
        "--interval",
        type=click.FloatRange(0, min_open=True),
        help="Seconds between candidate frames [2].",
    ),
    click.option("--threshold", type=float, help="Similarity under which a frame is kept."),
    click.option("--max-keyframes", type=click.IntRange(1), help="Cap keyframes per video."),
    click.option("--start", type=click.FloatRange(0), help="Start time (s)."),
    click.option("--end", type=float, help="End time (s)."),
    click.option("--min-duration", type=float, help="Skip videos shorter than this (s)."),
    click.option("--max-duration", type=float, help="Read at most this many seconds."),
    click.option(
        "--skip-solid/--no-skip-solid",
        default=None,
        help="Skip a leading solid-colour frame [skip].",
    ),
    click.option(
        "--cut-keyframes/--no-cut-keyframes",
        default=None,
        help="Also keep the first frame after each hard cut.",
    ),
    click.option(
        "--format",
        "image_format",
        type=click.Choice(["jpg", "png"]),
        help="Keyframe image format [jpg].",
    ),
    click.option(
        "--max-side", type=click.IntRange(16), help="Longest side of saved keyframes [1024]."
    ),
    click.option("--jpeg-quality", type=click.IntRange(1, 100), help="Keyframe JPEG quality."),
    click.option("--kf-batch-size", type=click.IntRange(1), help="Frames per embedder batch."),
)


def build_config(options: dict[str, Any], mapping: dict[str, str]) -> RunConfig:
    """RunConfig from an optional YAML file plus the options the user gave (and only those,
    so preset generation defaults still apply where no flag was set)."""
    data: dict[str, Any] = {}
    if options.get("config_path"):
        data = yaml.safe_load(Path(options["config_path"]).read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{options['config_path']}: the top level must be a mapping")
    for opt, dotted in mapping.items():
        value = options.get(opt)
        if value is None:
            continue
        section, key = dotted.split(".")
        data.setdefault(section, {})[key] = value
    templates = {}
    for item in options.get("templates") or ():
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(
                f"--template {item!r}: expected NAME=PATH",
                hint="e.g. --template summary=my_summary.txt",
            )
        templates[name.strip()] = path.strip()
    if templates:
        data.setdefault("caption", {}).setdefault("templates", {}).update(templates)
    try:
        return RunConfig.model_validate(data)
    except Exception as exc:  # pydantic's message names the bad field
        raise ConfigError(f"invalid settings: {exc}".replace("\n", " ")) from exc


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
