"""Backend registry: one lookup by name for built-in and third-party backends.

Built-ins are registered exactly like plugins: each is an entry ``name -> "module:Class"``
loaded on first use (so ``import diffcap.models`` never imports a backend's dependencies).
Third-party packages declare an entry point in the group ``diffcap.backends``::

    [project.entry-points."diffcap.backends"]
    mybackend = "mypkg.backend:MyBackend"      # a Backend subclass with name = "mybackend"

or call :func:`register_backend` at runtime.

    backend = get_backend("openai", ModelConfig(api_base="http://127.0.0.1:8000/v1"))
    backend = get_backend("transformers", model="/models/llava")   # ModelConfig fields as kwargs
    available_backends()  # ["openai", "transformers", ...]
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from pydantic import ValidationError

from diffcap.config import ModelConfig
from diffcap.errors import ConfigError, DiffcapError, MissingDependency, ModelUnavailable
from diffcap.hints import command
from diffcap.models.base import Backend

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "diffcap.backends"

#: Built-in backends, loaded lazily through the same path as entry points.
BUILTINS: dict[str, str] = {
    "openai": "diffcap.models.openai_backend:OpenAIBackend",
    "transformers": "diffcap.models.transformers_backend:TransformersBackend",
}

_registry: dict[str, type[Backend]] = {}
_pending: dict[str, str] = {}
_discovered = False


def register_backend(cls: type[Backend]) -> type[Backend]:
    """Register a :class:`Backend` subclass under ``cls.name`` (usable as a decorator)."""
    if not (inspect.isclass(cls) and issubclass(cls, Backend)):
        raise TypeError(f"{cls!r} is not a diffcap Backend subclass")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} needs a class attribute 'name'")
    _registry[name] = cls
    _pending.pop(name, None)
    return cls


def _discover() -> None:
    """Collect built-ins and entry points once (names only; nothing is imported yet)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    for name, target in BUILTINS.items():
        _pending.setdefault(name, target)
    try:
        eps = entry_points(group=ENTRY_POINT_GROUP)
    except Exception as exc:  # a broken distribution must not break diffcap
        log.warning("could not read entry points %s: %s", ENTRY_POINT_GROUP, exc)
        return
    for ep in eps:
        if ep.name not in _registry:
            _pending.setdefault(ep.name, ep.value)


def _load(name: str) -> type[Backend] | None:
    if name in _registry:
        return _registry[name]
    target = _pending.get(name)
    if target is None:
        return None
    module, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except DiffcapError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"backend '{name}' ({target}) failed to load: {exc}",
            hint="reinstall the package that provides it, or choose another --backend",
        ) from exc
    return register_backend(obj)


def available_backends() -> list[str]:
    """Names of all known backends (built-in, registered and from entry points)."""
    _discover()
    return sorted(set(_registry) | set(_pending))


def backend_class(name: str) -> type[Backend]:
    """The class registered as ``name``; ConfigError listing the choices when unknown."""
    _discover()
    cls = _load(name)
    if cls is None:
        raise ConfigError(
            f"unknown model backend '{name}'",
            hint=f"choose one of: {', '.join(available_backends())}",
        )
    return cls


#: Environment variables that hold an OpenAI API key or endpoint (``auto`` picks openai).
_OPENAI_ENV = ("OPENAI_API_KEY", "DIFFCAP_API_KEY", "OPENAI_BASE_URL")


def resolve_backend_name(cfg: ModelConfig, name: str | None = None) -> str:
    """The backend ``auto`` stands for: the OpenAI API (or an OpenAI-compatible server) when
    a key or ``api_base`` is given, else a small vision-language model in-process through
    transformers (no account needed)."""
    name = name or cfg.backend
    if name != "auto":
        return name
    if cfg.api_key or cfg.api_base or any(os.environ.get(v) for v in _OPENAI_ENV):
        return "openai"
    return "transformers"


def get_backend(name: str | None = None, cfg: ModelConfig | None = None, **kwargs: Any) -> Backend:
    """Build a backend. ``kwargs`` that are ModelConfig fields update ``cfg``; the rest go to
    the backend's constructor (e.g. ``prices=`` for the openai backend). ``auto`` (the
    default) is resolved by :func:`resolve_backend_name`."""
    cfg = cfg or ModelConfig()
    fields = {k: kwargs.pop(k) for k in list(kwargs) if k in ModelConfig.model_fields}
    asked = name or fields.get("backend") or cfg.backend
    name = resolve_backend_name(cfg, asked)
    if fields or name != cfg.backend:
        data = cfg.model_dump()
        data["api_key"] = cfg.api_key  # excluded from dumps on purpose; keep it here
        data.update(fields, backend=name)
        try:
            cfg = ModelConfig.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"invalid model settings: {exc}") from exc
    cls = backend_class(name)
    try:
        inspect.signature(cls).bind(cfg, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"backend '{name}' does not accept {sorted(kwargs)}: {exc}") from exc
    # Backend declares no constructor: the (cfg, **kwargs) contract is checked by bind() above.
    factory: Callable[..., Backend] = cls
    try:
        return factory(cfg, **kwargs)
    except MissingDependency as exc:
        if asked != "auto":
            raise
        raise ModelUnavailable(
            "no API key or --api-base given, and the in-process model needs torch and "
            f"transformers ({exc.message})",
            hint=no_model_routes(),
        ) from None


#: What to do when no model can be used (one line; README "Models" has the details).
NO_MODEL_ROUTES = (
    "pip install 'diffcap[local]' to caption in-process with a small local model; or set "
    "OPENAI_API_KEY; or serve a model with an OpenAI-compatible server and pass --api-base "
    "http://127.0.0.1:8000/v1; `{diffcap} models` shows what this machine has"
)


def no_model_routes() -> str:
    """:data:`NO_MODEL_ROUTES` with ``diffcap`` spelled as it runs here."""
    return NO_MODEL_ROUTES.format(diffcap=command("diffcap"))
