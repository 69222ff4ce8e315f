"""Command-line options generated from a command's own config section (``export``, ``eval``,
``train``, ``dpo``): the option, its default, range, choices and help text exist once, on the
pydantic field (:mod:`diffcap.config.export`, ...).

A field ``window`` becomes ``--window`` (a nested section's ``lora.r`` becomes ``--lora-r``);
a field's ``json_schema_extra`` may name another ``flag``, a ``path`` kind (``file``, ``dir``,
``any``; ``exists``) or an ``envvar``. The shown default is the field's default. Values come
from, lowest first: the field default < the ``--config`` YAML's section < ``--set
section.key=value`` < flags typed on the command line (a flag left at its default does not
override the YAML).

    @click.command()
    @section_options(ExportConfig, "export")
    def export(**params): ecfg = section_from_params(ExportConfig, "export", params)
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, TypeVar

import annotated_types as at
import click
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from diffcap.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

_EXPLICIT = (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)


def section_fields(model: type[BaseModel]) -> Iterator[tuple[tuple[str, ...], FieldInfo]]:
    """(path, field) of every leaf field, nested sections flattened (``("lora", "r")``)."""
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from (((name, *path), sub) for path, sub in section_fields(ann))
        else:
            yield (name,), field


def param_name(section: str, path: Sequence[str]) -> str:
    """The click parameter name of a section field (``export__window``)."""
    return "__".join((section, *path))


def flag_name(path: Sequence[str], field: FieldInfo) -> str:
    extra = _extra(field)
    return str(extra.get("flag") or "--" + "-".join(path).replace("_", "-"))


def field_default(field: FieldInfo) -> Any:
    """The field's default, a factory's included."""
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    return None if field.default is PydanticUndefined else field.default


def _extra(field: FieldInfo) -> dict[str, Any]:
    extra = field.json_schema_extra
    return dict(extra) if isinstance(extra, dict) else {}


def _plain(annotation: Any) -> Any:
    """``X | None`` -> ``X``."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def _range(kind: type, field: FieldInfo) -> Any:
    bounds: dict[str, Any] = {}
    for m in field.metadata:
        if isinstance(m, at.Ge):
            bounds["min"] = m.ge
        elif isinstance(m, at.Gt):
            bounds.update(min=m.gt, min_open=True)
        elif isinstance(m, at.Le):
            bounds["max"] = m.le
        elif isinstance(m, at.Lt):
            bounds.update(max=m.lt, max_open=True)
    if not bounds:
        return kind
    return click.IntRange(**bounds) if kind is int else click.FloatRange(**bounds)


def _click_type(field: FieldInfo) -> Any:
    ann = _plain(field.annotation)
    extra = _extra(field)
    if "path" in extra:  # file, dir or any
        kind = extra["path"]
        return click.Path(
            exists=bool(extra.get("exists")), file_okay=kind != "dir", dir_okay=kind != "file"
        )
    if typing.get_origin(ann) is Literal:
        return click.Choice([str(a) for a in typing.get_args(ann)])
    if ann in (int, float):
        return _range(ann, field)
    return str


def _option(section: str, path: tuple[str, ...], field: FieldInfo) -> Callable[[Any], Any]:
    name, flag = param_name(section, path), flag_name(path, field)
    default = field_default(field)
    help_text = field.description or ""
    ann = _plain(field.annotation)
    if ann is bool:
        return click.option(flag, name, is_flag=True, default=bool(default), help=help_text)
    if typing.get_origin(ann) is dict:
        return click.option(
            flag, name, multiple=True, metavar="NAME=PATH", help=help_text, callback=_pairs
        )
    if typing.get_origin(ann) is tuple:
        return click.option(
            flag,
            name,
            default=",".join(default),
            show_default=True,
            help=help_text,
            callback=_names(field),
        )
    return click.option(
        flag,
        name,
        type=_click_type(field),
        default=default,
        show_default=default is not None,
        envvar=_extra(field).get("envvar"),
        help=help_text,
    )


def section_options(
    model: type[BaseModel], section: str, *, exclude: Sequence[str] = ()
) -> Callable[[Any], Any]:
    """Decorate a command with one option per field of ``model`` (in field order);
    ``exclude``: dotted field paths that get no flag."""
    options = [
        _option(section, path, field)
        for path, field in section_fields(model)
        if ".".join(path) not in exclude
    ]

    def apply(func: Any) -> Any:
        for option in reversed(options):
            func = option(func)
        return func

    return apply


def file_options(sections: str) -> Callable[[Any], Any]:
    """``--config`` / ``--set`` for a command whose YAML holds only its own sections (train,
    train-dpo); eval and export share those of their run config (:mod:`diffcap.cli.options`)."""

    def apply(func: Any) -> Any:
        func = click.option(
            "--set",
            "assignments",
            multiple=True,
            metavar="SECTION.KEY=VALUE",
            help=f"Set any {sections} field (repeatable); the value is parsed as YAML.",
        )(func)
        return click.option(
            "--config",
            "config_path",
            type=click.Path(dir_okay=False, exists=True),
            help=f"YAML config whose `{sections}:` mapping sets these options (flags win).",
        )(func)

    return apply


def section_from_params(
    model: type[M],
    section: str,
    params: dict[str, Any],
    *,
    others: Sequence[str] | None = None,
) -> M:
    """The section from the YAML (``params["config_path"]``), ``--set section.*``
    (``params["assignments"]``; the section's assignments are removed, the rest kept for the
    run config) and the flags typed (popped from ``params``)."""
    from diffcap.config.resolve import parse_set, resolve_section  # lazy: start-up

    ctx = click.get_current_context(silent=True)
    prefix = f"{section}."
    assignments = list(params.get("assignments") or ())
    own = [a for a in assignments if a.partition("=")[0].strip().startswith(prefix)]
    params["assignments"] = tuple(a for a in assignments if a not in own)
    overrides = parse_set(own)
    for path, field in section_fields(model):
        name = param_name(section, path)
        if name not in params:
            continue
        value = params.pop(name)
        if ctx is not None:
            explicit = ctx.get_parameter_source(name) in _EXPLICIT
        else:  # called outside click: a value other than the default was given
            explicit = value is not None and value != field_default(field)
        if explicit:
            overrides[".".join((section, *path))] = value
    return resolve_section(model, section, params.get("config_path"), overrides, others=others)


def _pairs(ctx: click.Context, param: click.Parameter, items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ConfigError(
                f"{param.opts[0]} {item!r}: expected NAME=PATH",
                hint="e.g. --template summary=my_summary.txt",
            )
        out[name.strip()] = path.strip()
    return out


def _names(field: FieldInfo) -> Callable[..., tuple[str, ...]]:
    """Parse a comma-separated list; the choices, when the field's doc names them
    (``choices`` in json_schema_extra), are checked here to name the flag in the error."""
    choices = _extra(field).get("choices")

    def parse(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
        names = tuple(t.strip() for t in value.split(",") if t.strip())
        bad = [t for t in names if choices and t not in choices]
        if bad or not names:
            shown = ",".join(choices or ())
            raise click.BadParameter(f"{','.join(bad) or value!r}: choose from {shown}")
        return names

    return parse
