"""Resolve a run's config: preset < YAML file < flags (``--set section.key=value`` included).

Unknown keys are errors that name the dotted key; the resolved config is saved with the run
(``RUN_DIR/config.yaml``) without the API key, once the run's pre-flight has passed. A rerun
given neither a preset nor a YAML starts from that saved config (``saved=``), so
``diffcap run --out R --retry-failed`` keeps the run's model and settings.

    cfg = resolve_config(preset="paper", yaml_path="run.yaml",
                         overrides={"keyframes.interval": 1.0})
    save_config(cfg, run_dir / "config.yaml")
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Collection
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from diffcap.config import RunConfig
from diffcap.errors import ConfigError
from diffcap.fsutil import atomic_write_text
from diffcap.redact import (
    REDACTED,
    redact_data,
    register_secret,
    register_url_secrets,
    url_without_password,
)

M = TypeVar("M", bound=BaseModel)


def list_presets() -> list[str]:
    """Names of the presets shipped in ``diffcap/presets/*.yaml``."""
    folder = resources.files("diffcap") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> dict[str, Any]:
    path = resources.files("diffcap") / "presets" / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"unknown preset '{name}'", hint=f"choose one of: {', '.join(list_presets())}"
        )
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    data.pop("description", None)
    return data


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not a text file in UTF-8 ({exc.reason})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of sections")
    return data


def parse_set(assignments: list[str]) -> dict[str, Any]:
    """``["model.concurrency=4", "filter.dedup=true"]`` -> dotted overrides (YAML-typed)."""
    out: dict[str, Any] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ConfigError(
                f"--set {item!r}: expected section.key=value",
                hint="e.g. --set keyframes.interval=1.5",
            )
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"--set {item!r}: the value is not valid YAML ({' '.join(str(exc).split())})",
                hint="quote strings that contain ':' '[' or '{'",
            ) from None
    return out


def nest(dotted: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"config key '{key}': '{part}' is not a section")
        node[leaf] = value
    return out


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def resolve_config(
    preset: str | None = None,
    yaml_path: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    saved: str | os.PathLike[str] | None = None,
    sections: Collection[str] = (),
) -> RunConfig:
    """Build the RunConfig; a ``preset:`` key in the YAML names a preset too (flag wins).
    ``saved`` (a run's ``config.yaml``) is the base instead when neither a preset nor a
    YAML is given and the file exists. ``sections``: top-level YAML keys that belong to a
    command's own section (``eval``, ``export``; see :func:`resolve_section`), skipped here."""
    if saved is not None and preset is None and yaml_path is None and Path(saved).is_file():
        file_data = _saved_config(Path(saved), overrides or {})
    else:
        file_data = load_yaml(yaml_path) if yaml_path else {}
    for section in sections:
        file_data.pop(section, None)
    preset = preset or file_data.pop("preset", None)
    file_data.pop("preset", None)
    data = load_preset(preset) if preset else {}
    data = merge(data, file_data)
    data = merge(data, nest({k: v for k, v in (overrides or {}).items() if v is not None}))
    return validate(data)


def _saved_config(path: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """A run's saved config as a base. Credentials are never saved: an ``api_base`` whose
    user info was redacted must be given again."""
    data = load_yaml(path)
    base = (data.get("model") or {}).get("api_base")
    if isinstance(base, str) and REDACTED in base and not overrides.get("model.api_base"):
        raise ConfigError(
            f"{path}: the run's --api-base had user:password, which is never saved",
            hint="pass --api-base with the credentials again",
        )
    return data


def validate(data: dict[str, Any]) -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc) from None


def resolve_section(
    model: type[M],
    section: str,
    yaml_path: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    others: Collection[str] | None = None,
) -> M:
    """A command's own section (``export``, ``eval``, ``train``, ``dpo``): its defaults <
    the YAML file's ``section:`` mapping < ``overrides`` (dotted keys under the section,
    ``{"export.window": 8}``; explicit flags are among them). ``others``: the other
    top-level YAML keys allowed beside it; ``None`` when a RunConfig reads the same file and
    checks them (:func:`resolve_config` with ``sections=``)."""
    data = load_yaml(yaml_path) if yaml_path else {}
    if others is not None:
        for key in data:
            if key != section and key not in others:
                raise ConfigError(
                    f"{yaml_path}: unknown config key '{key}'",
                    hint=f"valid keys at the top level: {', '.join([section, *others])}",
                )
    own = data.get(section) or {}
    if not isinstance(own, dict):
        raise ConfigError(f"{yaml_path}: '{section}' must be a mapping of settings")
    over = nest({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return model.model_validate(merge(own, over.get(section, {})))
    except ValidationError as exc:
        raise _config_error(exc, model, (section,)) from None


def _config_error(
    exc: ValidationError, model: type[BaseModel] = RunConfig, prefix: tuple[str, ...] = ()
) -> ConfigError:
    problems, hint = [], None
    for err in exc.errors():
        key = ".".join(str(p) for p in (*prefix, *err["loc"]))
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown config key '{key}'")
            hint = hint or _suggest(err["loc"], model, prefix)
        else:
            problems.append(f"config key '{key}': {err['msg']}")
    return ConfigError("; ".join(problems), hint=hint)


def _suggest(
    loc: tuple[Any, ...], model: type[BaseModel] = RunConfig, prefix: tuple[str, ...] = ()
) -> str:
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None) if field else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            break
        model = ann
    names = sorted(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), names, n=1)
    where = ".".join(str(p) for p in (*prefix, *loc[:-1])) or "top level"
    did = f"did you mean '{close[0]}'? " if close else ""
    return f"{did}valid keys in {where}: {', '.join(names)}"


def config_to_dict(cfg: RunConfig) -> dict[str, Any]:
    """JSON-able dict without secrets (``model.api_key`` is never written)."""
    data = cfg.model_dump(mode="json")
    data.get("model", {}).pop("api_key", None)
    # api_base user info and key-like values never reach config.yaml or run.sqlite; the key
    # itself is registered so later error texts and logs that echo it are redacted too.
    register_secret(cfg.model.api_key)
    register_url_secrets(cfg.model.api_base)
    clean: dict[str, Any] = redact_data(data, [cfg.model.api_key])
    if cfg.engine.cache_url is not None:  # the cache's place, usable again: no password
        clean["engine"]["cache_url"] = url_without_password(cfg.engine.cache_url)
    return clean


def save_config(cfg: RunConfig, path: Path) -> None:
    """Write the resolved config as YAML (atomic rename)."""
    atomic_write_text(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
