"""Model backends behind one interface.

A request is a frozen value with a stable :meth:`ModelRequest.cache_key`; a backend turns it
into a :class:`ModelResponse`. Backends declare capabilities as class attributes and register
by name (see :mod:`diffcap.models.registry`).

    backend = get_backend("openai", model="gpt-4o-mini", api_base="http://127.0.0.1:8000/v1")
    req = ModelRequest(model=backend.model, prompt="Describe.", images=(ImageInput(jpeg),))
    resp = await backend.agenerate(req)          # or backend.generate(req) from sync code
    resp.text, resp.usage.prompt_tokens
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from diffcap.models.context import ContextWindow, TokenCounter, choose_window
from diffcap.timeline import Usage

log = logging.getLogger(__name__)

#: Longest answer kept, in characters (docs/models.md): about 16k tokens, far above what
#: ``model.max_tokens`` asks for by default. A longer answer (a server that ignores
#: max_tokens, or echoes a huge input) is cut here, before it is cached, written to records
#: or fed to the next prompt; the cut is recorded as ``finish_reason="answer_cap"``.
MAX_ANSWER_CHARS = 64_000
ANSWER_CAPPED = "answer_cap"


@dataclass(frozen=True)
class ImageInput:
    """One encoded image (JPEG or PNG bytes). Encode once, reuse in many requests."""

    data: bytes
    mime: str = "image/jpeg"

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class ModelRequest:
    """A single generation request: a user prompt, images in order, optional system prompt."""

    model: str
    prompt: str
    images: tuple[ImageInput, ...] = ()
    system: str | None = None
    #: Generation options (max_tokens, temperature, num_beams, detail, ...), JSON-able.
    options: tuple[tuple[str, Any], ...] = ()
    #: Free-form labels (video_id, step) for logs; not part of the cache key.
    tags: tuple[tuple[str, Any], ...] = field(default=(), compare=False)

    @staticmethod
    def make_options(options: dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
        return tuple(sorted((options or {}).items()))

    @property
    def options_dict(self) -> dict[str, Any]:
        return dict(self.options)

    def cache_key(self, backend: str = "", identity: str | None = None) -> str:
        """sha256 of canonical JSON of backend, model, options, prompts and image hashes,
        and the model's ``identity`` (a local model's fingerprint) when it has one."""
        payload: dict[str, Any] = {
            "backend": backend,
            "model": self.model,
            "system": self.system,
            "prompt": self.prompt,
            "images": [img.sha256 for img in self.images],
            "options": self.options_dict,
        }
        if identity:  # absent, not null: keys of models without one stay as they were
            payload["identity"] = identity
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class ModelResponse:
    text: str
    model: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    #: True when replayed from the request cache (no model was called).
    cached: bool = False

    def __post_init__(self) -> None:
        if len(self.text) > MAX_ANSWER_CHARS:
            log.warning(
                "%s: an answer of %d characters was cut to %d (finish_reason %s)",
                self.model,
                len(self.text),
                MAX_ANSWER_CHARS,
                ANSWER_CAPPED,
            )
            object.__setattr__(self, "text", self.text[:MAX_ANSWER_CHARS])
            object.__setattr__(self, "finish_reason", ANSWER_CAPPED)


class Backend(ABC):
    """Base class of model backends.

    Subclasses implement :meth:`agenerate` (and may override :meth:`agenerate_batch` when they
    can batch natively, as in-process models do).
    """

    # Name and capabilities are set as class attributes but typed as instance attributes (not
    # ClassVar): a wrapper such as CachedBackend mirrors its inner backend's values per instance.
    #: Registry name ("openai", "transformers").
    name: str
    #: Whether one request may carry several images (else composites are sent).
    supports_multi_image: bool = True
    #: Whether several requests are batched natively in :meth:`agenerate_batch`.
    supports_batching: bool = False

    model: str

    @abstractmethod
    async def agenerate(self, request: ModelRequest) -> ModelResponse:
        """Run one request. Raises :class:`diffcap.errors.RequestFailed` / ModelUnavailable."""

    async def agenerate_batch(self, requests: Sequence[ModelRequest]) -> list[ModelResponse]:
        """Run many requests; default: concurrently with :meth:`agenerate`."""
        return list(await asyncio.gather(*(self.agenerate(r) for r in requests)))

    def preflight(self) -> None:  # noqa: B027 - optional hook
        """Fail fast (ModelUnavailable) when the model cannot be used at all: an endpoint
        that does not answer, a model folder that is not there. Cheap: loads no weights."""

    # --- what the model can read (see diffcap.models.context) ----------------------------

    def context_window(self) -> ContextWindow:
        """The model's context window: the ``context_tokens`` setting, what the model or
        server reports (:meth:`reported_context`), a known-model table, else a fallback."""
        cfg = getattr(self, "cfg", None)
        setting = getattr(cfg, "context_tokens", None)
        return choose_window(setting, self.reported_context(), self.model)

    def reported_context(self) -> ContextWindow | None:
        """The window the model itself reports (its config, the server); None if unknown."""
        return None

    def token_counter(self) -> TokenCounter | None:
        """An exact token counter (the model's tokenizer) when one can be had, else None."""
        return None

    def image_token_cost(self) -> int | None:
        """Prompt tokens one image costs, when the model's processor says; else None."""
        return None

    def generate(self, request: ModelRequest) -> ModelResponse:
        """Synchronous adapter for scripts and tests."""
        return asyncio.run(self.agenerate(request))

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release clients / models."""
