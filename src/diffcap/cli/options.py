"""Options shared by the commands that drive a model (caption, summarize, recaption, export),
and the mapping from those options to the run config.

    @click.command()
    @model_options
    def cmd(**options): cfg = build_config(options, MODEL_OPTIONS)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml

from diffcap.config import RunConfig
from diffcap.errors import ConfigError

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


def stack_options(*decorators: Callable) -> Callable:
    """One decorator applying ``decorators`` in order (as if stacked top to bottom)."""

    def apply(f: Callable) -> Callable:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


model_options = stack_options(
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

caption_options = stack_options(
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
