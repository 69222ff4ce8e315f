"""Command-line options generated from the run config: an option exists once, in config.py.

Every :class:`~diffcap.config.RunConfig` field a command uses becomes ``--section-key``
(help text from the field's description, default from its default), plus the short alias
from :data:`ALIASES` (``--interval`` for ``keyframes.interval``). Every such command also
takes ``--preset``, ``--config`` and ``--set``. Precedence, lowest first:

    preset  <  --config YAML (its ``preset:`` key names a preset too)  <  --set  <  flags

    @click.command()
    @config_options(KEYFRAMES_FIELDS)
    def keyframes(**params): cfg = config_from_params(params)
"""

from __future__ import annotations

import logging
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import click
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from diffcap.config import RunConfig
from diffcap.errors import ConfigError
from diffcap.redact import register_secret, register_url_secrets

#: Short aliases for the flags people type most (one table for every command).
ALIASES: dict[str, str] = {
    "engine.engine": "--engine",
    "engine.workers": "--workers",
    "engine.max_cost_usd": "--max-cost-usd",
    "engine.ray_address": "--ray-address",
    "model.backend": "--backend",
    "model.model": "--model",
    "model.api_base": "--api-base",
    "model.api_key": "--api-key",
    "model.concurrency": "--concurrency",
    "model.timeout_s": "--timeout",
    "model.max_retries": "--max-retries",
    "model.max_tokens": "--max-tokens",
    "model.num_beams": "--num-beams",
    "model.temperature": "--temperature",
    "model.image_max_side": "--image-max-side",
    "model.detail": "--detail",
    "model.device": "--device",
    "model.batch_size": "--model-batch-size",
    "caption.mode": "--mode",
    "caption.prompt_preset": "--prompt-preset",
    "caption.pair_layout": "--pair-layout",
    "caption.fast_layout": "--fast-layout",
    "caption.fast_max_frames": "--fast-max-frames",
    "caption.fast_max_side": "--fast-max-side",
    "summary.enabled": "--summary",
    "summary.model": "--summary-model",
    "keyframes.embedder": "--embedder",
    "keyframes.interval": "--interval",
    "keyframes.threshold": "--threshold",
    "keyframes.max_keyframes": "--max-keyframes",
    "keyframes.start": "--start",
    "keyframes.end": "--end",
    "keyframes.max_seconds": "--max-seconds",
    "keyframes.skip_solid": "--skip-solid",
    "keyframes.cut_keyframes": "--cut-keyframes",
    "keyframes.image_format": "--format",
    "keyframes.max_side": "--max-side",
    "keyframes.jpeg_quality": "--jpeg-quality",
    "keyframes.batch_size": "--kf-batch-size",
    "filter.min_duration": "--min-duration",
    "filter.max_duration": "--max-duration",
    "filter.dedup": "--dedup",
    "filter.dedup_threshold": "--dedup-threshold",
    "output.shard_size": "--shard-size",
    "input.download_dir": "--download-dir",
}

#: What each kind of command exposes (section names, or dotted fields).
ALL_FIELDS: tuple[str, ...] = tuple(RunConfig.model_fields)
KEYFRAMES_FIELDS = (
    "input",
    "keyframes",
    "filter.min_duration",
    "filter.max_duration",
    "engine.engine",
    "engine.ray_address",
    "engine.workers",
    "engine.max_consecutive_faults",
    "engine.ray_max_retries",
    "engine.max_worker_deaths",
    "engine.ray_stall_s",
    "engine.ray_rows_per_block",
    "output",
)
MODEL_FIELDS = ("model", "caption.prompt_preset", "caption.templates")

_ENV = {"model.api_key": "DIFFCAP_API_KEY"}


def _fields(include: Sequence[str]) -> Iterator[tuple[str, str, FieldInfo]]:
    """(section, key, field) of the included RunConfig fields, in config order."""
    for section, sfield in RunConfig.model_fields.items():
        model = typing.cast("type[BaseModel]", sfield.annotation)
        for key, field in model.model_fields.items():
            if section in include or f"{section}.{key}" in include:
                yield section, key, field


def _click_type(annotation: Any) -> tuple[Any, bool, bool]:
    """(click type, is_flag, multiple) for a pydantic field annotation."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _click_type(args[0])
    if origin is Literal:
        return click.Choice([str(a) for a in typing.get_args(annotation)]), False, False
    if origin is list:
        return str, False, True
    if annotation is bool:
        return bool, True, False
    if annotation in (int, float, str):
        return annotation, False, False
    return None, False, False  # dicts and other shapes: use --set


def _help(dotted: str, field: FieldInfo) -> str:
    text = (field.description or "").rstrip(".")
    default = field.default
    if (
        field.default_factory is not None
        or default is PydanticUndefined
        or dotted == "model.api_key"
    ):
        shown = ""
    elif isinstance(default, bool):
        shown = f" [{'on' if default else 'off'}]"
    else:
        shown = f" [{default}]" if default is not None else ""
    return f"{text}{shown}. ({dotted})"


def _option(section: str, key: str, field: FieldInfo) -> Callable[[Any], Any] | None:
    ctype, is_flag, multiple = _click_type(field.annotation)
    if ctype is None:
        return None
    dotted = f"{section}.{key}"
    names = [f"--{section}-{key}".replace("_", "-")]
    if dotted in ALIASES and ALIASES[dotted] != names[0]:
        names.append(ALIASES[dotted])
    if is_flag:
        names = [f"{n}/--no-{n[2:]}" for n in names]
    return click.option(
        *names,
        f"{section}__{key}",
        type=None if is_flag else ctype,
        default=None,
        multiple=multiple,
        envvar=_ENV.get(dotted),
        help=_help(dotted, field),
        show_default=False,
    )


_COMMON = (
    click.option(
        "--preset", help="Named config preset shipped with diffcap (paper, fast-cheap...)."
    ),
    click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, exists=True),
        help="YAML run config (sections: input, filter, keyframes, model, ...).",
    ),
    click.option(
        "--set",
        "assignments",
        multiple=True,
        metavar="SECTION.KEY=VALUE",
        help="Set any config field (repeatable); the value is parsed as YAML.",
    ),
)


_API_KEY_FILE = click.option(
    "--api-key-file",
    "api_key_file",
    type=click.Path(dir_okay=False, exists=True),
    help="Read the API key from this file (first line). Safer than --api-key, which other "
    "users see in the process list; $DIFFCAP_API_KEY works too.",
)


def config_options(include: Sequence[str] = ALL_FIELDS) -> Callable[[Any], Any]:
    """Decorate a command with ``--preset/--config/--set`` and one option per included
    config field (click parameter name ``section__key``)."""
    fields = list(_fields(include))

    def apply(func: Any) -> Any:
        for section, key, field in reversed(fields):
            option = _option(section, key, field)
            if option is not None:
                func = option(func)
        if "caption.templates" in include or "caption" in include:
            func = click.option(
                "--template",
                "templates",
                multiple=True,
                metavar="NAME=PATH",
                help="Replace one prompt template by a file (repeatable).",
            )(func)
        if "model" in include or "model.api_key" in include:
            func = _API_KEY_FILE(func)
        for common in reversed(_COMMON):
            func = common(func)
        return func

    return apply


def config_from_params(
    params: dict[str, Any], *, saved: Path | None = None, sections: Sequence[str] = ()
) -> RunConfig:
    """The RunConfig from a command's parameters; pops every config parameter it uses.
    ``saved``: the run directory's ``config.yaml``, the base when no --preset or --config
    is given (a rerun keeps the run's settings; flags and --set still apply on top).
    ``sections``: the command's own sections in the same YAML (read by
    :func:`diffcap.cli.sections.section_from_params` first)."""
    from diffcap.config.resolve import parse_set, resolve_config  # lazy: start-up

    overrides = parse_set(list(params.pop("assignments", ()) or ()))
    flags = {}
    for name in [n for n in params if "__" in n]:
        value = params.pop(name)
        if value is None or value == ():
            continue
        section, key = name.split("__", 1)
        flags[f"{section}.{key}"] = list(value) if isinstance(value, tuple) else value
    overrides.update(flags)  # explicit flags win over --set
    _api_key_sources(params, overrides)
    templates = parse_templates(params.pop("templates", ()) or ())
    if templates:
        overrides["caption.templates"] = {**overrides.get("caption.templates", {}), **templates}
    cfg = resolve_config(
        params.pop("preset", None),
        params.pop("config_path", None),
        overrides,
        saved=saved,
        sections=sections,
    )

    register_secret(cfg.model.api_key)  # redacted from every log line and file
    register_url_secrets(cfg.model.api_base)  # user:pass@ too, wherever it is echoed
    return cfg


def _api_key_sources(params: dict[str, Any], overrides: dict[str, Any]) -> None:
    """``--api-key-file``, and a warning for a key typed as ``--api-key`` (the process list
    shows every argument to every user of the machine)."""
    path = params.pop("api_key_file", None)
    if path and "model.api_key" not in overrides:
        lines = Path(path).read_text(encoding="utf-8").strip().splitlines()
        if not lines or not lines[0].strip():
            raise ConfigError(f"--api-key-file {path}: the file is empty")
        overrides["model.api_key"] = lines[0].strip()
    ctx = click.get_current_context(silent=True)
    source = ctx.get_parameter_source("model__api_key") if ctx is not None else None
    if source == click.core.ParameterSource.COMMANDLINE:
        logging.getLogger("diffcap.cli").warning(
            "--api-key shows the key to every user of this machine (process list, shell "
            "history); prefer DIFFCAP_API_KEY or --api-key-file"
        )


def parse_templates(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ConfigError(
                f"--template {item!r}: expected NAME=PATH",
                hint="e.g. --template summary=my_summary.txt",
            )
        out[name.strip()] = path.strip()
    return out


def stack_options(*decorators: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """One decorator applying ``decorators`` in order (as if stacked top to bottom)."""

    def apply(f: Any) -> Any:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


#: The model options of commands that call a model without running the pipeline
#: (summarize, recaption, export).
model_options = config_options(MODEL_FIELDS)


def checked_backend(cfg: RunConfig) -> Any:
    """The backend, checked before any request (an endpoint that does not answer, a model
    neither cached nor downloadable now), or raise ModelUnavailable."""
    from diffcap.models import get_backend  # lazy: start-up

    backend = get_backend(cfg.model.backend, cfg.model)
    backend.preflight()
    return backend
