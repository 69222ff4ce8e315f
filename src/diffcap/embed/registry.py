"""Image embedders by name: ``"weightless"``, ``"clip"``, ``"clip:<hub id or dir>"``,
``"effnet-lite0"`` (``"effnet-lite0:<exported .onnx>"``), ...

    from diffcap.embed import get_image_embedder
    emb = get_image_embedder("clip:/models/clip-l-336", device="cuda")
    emb.model_id, emb.default_threshold        # ("clip:/models/clip-l-336", 0.93)

A spec is ``NAME`` or ``NAME:ARG``; ARG is the model (hub id or local directory) for model
embedders. New embedders register with :func:`register_image_embedder`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from diffcap.embed.base import ImageEmbedder
from diffcap.embed.weightless import WeightlessEmbedder
from diffcap.errors import ConfigError, ModelUnavailable

#: name -> factory(arg or None, **options) -> ImageEmbedder
_FACTORIES: dict[str, Callable[..., ImageEmbedder]] = {}


def register_image_embedder(name: str, factory: Callable[..., ImageEmbedder]) -> None:
    """Make ``get_image_embedder(name)`` / ``name:ARG`` build embedders with ``factory``."""
    _FACTORIES[name] = factory


def image_embedder_names() -> list[str]:
    return sorted(_FACTORIES)


def get_image_embedder(spec: str | ImageEmbedder = "weightless", **options: Any) -> ImageEmbedder:
    """Build the embedder named by ``spec`` (an embedder instance is returned unchanged).

    ``options`` go to the factory (``device``, ``batch_size`` for model embedders).
    Raises :class:`ConfigError` for an unknown name, ``ModelUnavailable`` when weights cannot
    be loaded and ``MissingDependency`` when an optional package is missing.
    """
    if not isinstance(spec, str):
        return spec
    name, _, arg = spec.partition(":")
    factory = _FACTORIES.get(name.strip().lower())
    if factory is None:
        raise ConfigError(
            f"unknown image embedder '{spec}'",
            hint=f"choose one of: {', '.join(image_embedder_names())} (e.g. clip:<hub id or dir>)",
        )
    return factory(arg.strip() or None, **options)


def check_image_embedder(spec: str) -> None:
    """Fail fast, loading nothing: an unknown name (ConfigError) or a model folder that is
    not there (ModelUnavailable), before any video is decoded."""
    name, _, arg = spec.partition(":")
    if name.strip().lower() not in _FACTORIES:
        get_image_embedder(spec)  # raises the ConfigError listing the choices
    arg = arg.strip()
    if not arg and name.strip().lower() != "clip":
        return  # no model to look for (and no urllib to import: a command's start-up)
    from diffcap.models.hub import check_hub_model, looks_like_local_path  # lazy: start-up

    local = arg.startswith(("/", ".", "~")) or looks_like_local_path(arg)
    looks_local = bool(arg) and (local or Path(arg).expanduser().exists())
    if arg and looks_local and not Path(arg).expanduser().is_dir():
        raise ModelUnavailable(
            f"embedder model folder not found: {arg} (no such folder)",
            hint="pass an existing local folder (clip:/path/to/clip) or a hub id",
        )
    if name.strip().lower() == "clip" and not looks_local:
        if importlib.util.find_spec("huggingface_hub") is None:
            return  # the local extra is missing: loading says which pip command to run
        from diffcap.embed.clip import CLIP_OFFLINE_ROUTES, DEFAULT_CLIP  # lazy: start-up

        # cached, or downloadable now: else fail fast, with the embedder's routes
        check_hub_model(arg or DEFAULT_CLIP, CLIP_OFFLINE_ROUTES)


def _weightless(arg: str | None, **_: Any) -> ImageEmbedder:
    if arg:
        raise ConfigError(f"the weightless embedder takes no argument (got '{arg}')")
    return WeightlessEmbedder()


def _clip(arg: str | None, **options: Any) -> ImageEmbedder:
    from diffcap.embed.clip import DEFAULT_CLIP, ClipEmbedder  # lazy: start-up

    return ClipEmbedder(arg or DEFAULT_CLIP, **options)


def _effnet(arg: str | None, **options: Any) -> ImageEmbedder:
    from diffcap.embed.effnet import EffNetLite0Embedder  # lazy: start-up

    return EffNetLite0Embedder(arg, batch_size=options.get("batch_size", 16))


register_image_embedder("weightless", _weightless)
register_image_embedder("clip", _clip)
register_image_embedder("effnet-lite0", _effnet)
