"""The plumbing every captioning mode shares: generation options, one model call with usage
accounting under a shared in-flight limit, and keyframe images read and encoded once.

    caller = Caller(backend, options=generation_options(model_cfg, templates), limiter=sem)
    text = await caller.ask("Describe.", [image_input], step="first_frame")
    caller.usage.requests, caller.usage.prompt_tokens
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from diffcap.captioning.images import encode_jpeg, to_pil, vertical_composite
from diffcap.config import ModelConfig
from diffcap.errors import ContextExceeded
from diffcap.models.base import Backend, ImageInput, ModelRequest
from diffcap.prompts.render import span_defaults
from diffcap.timeline import Keyframe, Usage

if TYPE_CHECKING:
    from diffcap.prompts.presets import TemplateSet

log = logging.getLogger(__name__)

#: ModelConfig fields that become request options.
OPTION_FIELDS = ("max_tokens", "temperature", "num_beams", "detail")


def generation_options(
    model_cfg: ModelConfig, templates: TemplateSet | None = None
) -> dict[str, Any]:
    """Request options: what the user set in ``model_cfg`` wins, then the template preset's
    generation defaults (e.g. ShareCaptioner: 3 beams, 2048 tokens), then ModelConfig defaults.
    """
    preset = dict(getattr(templates, "generation", None) or {})
    explicit = model_cfg.model_fields_set
    opts: dict[str, Any] = {}
    for key in OPTION_FIELDS:
        value = getattr(model_cfg, key)
        if key in explicit and value is not None:
            opts[key] = value
        elif preset.get(key) is not None:
            opts[key] = preset[key]
        elif value is not None:
            opts[key] = value
    return opts


@dataclass(frozen=True)
class Span:
    """What one prompt covers: ``start``/``end`` in seconds from the start of the file (the
    clock keyframe times use) and the file's length. Templates get it as ``start``, ``end``,
    ``duration`` (``end - start``), ``video_duration`` and ``scope`` (``"video"`` or
    ``"clip"``), so a summary of seconds 8-16 of a 24 s file says "the clip from 8.0 s to
    16.0 s", never "a video that lasts 24.0 s".
    """

    start: float
    end: float
    video_duration: float

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)

    def variables(self) -> dict[str, Any]:
        """The template variables: start, end, duration, video_duration, scope."""
        return span_defaults(
            {"start": self.start, "end": self.end, "video_duration": self.video_duration}
        )


@dataclass
class Caller:
    """Sends requests for one unit of work (a video, a clip) and sums their usage.

    ``limiter`` is shared by all concurrent videos so the whole run keeps at most N requests
    in flight, whatever the backend does internally.
    """

    backend: Backend
    options: dict[str, Any] = field(default_factory=dict)
    limiter: asyncio.Semaphore | None = None
    model: str | None = None
    #: System prompt of the template preset (None: none sent).
    system: str | None = None
    usage: Usage = field(default_factory=Usage)
    tags: tuple[tuple[str, Any], ...] = ()
    #: The model's prompt budget (:mod:`diffcap.captioning.budget`); None: no checks.
    budget: Any = None

    @property
    def model_name(self) -> str:
        return self.model or getattr(self.backend, "model", "") or ""

    async def ask(
        self,
        prompt: str,
        images: Sequence[ImageInput] = (),
        *,
        step: str = "",
        model: str | None = None,
        image_units: int | None = None,
    ) -> str:
        """Send one request; its text. ``image_units``: what the images cost in images (a
        two-frame composite counts 2). Raises :class:`~diffcap.errors.ContextExceeded`
        before sending when the budget says the request cannot fit, and after the server
        said so (the budget then learns the server's limit)."""
        units = len(images) if image_units is None else image_units
        if not await self.ensure_fits(prompt, units):
            self._refuse(prompt, units, step)
        request = ModelRequest(
            model=model or self.model_name,
            prompt=prompt,
            images=tuple(images),
            system=self.system,
            options=ModelRequest.make_options(self.options),
            tags=(*self.tags, ("step", step)),
        )
        planned = self.budget.effective if self.budget is not None else None
        try:
            if self.limiter is None:
                response = await self.backend.agenerate(request)
            else:
                async with self.limiter:
                    response = await self.backend.agenerate(request)
        except ContextExceeded as exc:
            if self.budget is not None:
                self.budget.learn(exc.limit, planned)
            raise
        self._account(response.usage, request.model, response.cached)
        return response.text.strip()

    def _refuse(self, prompt: str, image_units: int, step: str) -> None:
        """Raise ContextExceeded for a request the budget says cannot fit (never sent)."""
        b = self.budget
        need = b.need(self._full(prompt), image_units)
        raise ContextExceeded(
            f"{step}: the request needs {need:,} tokens, over the context of {b.context:,}",
            limit=b.context,
            tokens=need,
        )

    def _full(self, prompt: str) -> str:
        """The text counted for a request: the system prompt, then the prompt."""
        return f"{self.system}\n{prompt}" if self.system else prompt

    async def ensure_fits(self, prompt: str, image_units: int = 0) -> bool:
        """:meth:`fits`, after measuring the real counts (once) when the estimate says no."""
        if self.fits(prompt, image_units):
            return True
        if self.budget is not None and await self.budget.calibrate():
            return self.fits(prompt, image_units)
        return False

    def fits(self, prompt: str, image_units: int = 0) -> bool:
        """Whether the request fits the budget (always, without one)."""
        b = self.budget
        return b is None or self.prompt_tokens(prompt) <= b.room(image_units)

    def prompt_tokens(self, prompt: str) -> int:
        """Tokens of ``prompt`` with the system prompt (what the budget counts)."""
        return int(self.budget.tokens(self._full(prompt))) if self.budget is not None else 0

    def _account(self, used: Usage, model: str, cached: bool) -> None:
        cost = used.cost_usd  # priced by the backend: the one place cost is set
        self.usage.add(
            Usage(
                requests=max(1, used.requests),
                prompt_tokens=used.prompt_tokens,
                completion_tokens=used.completion_tokens,
                cost_usd=cost,
                cached_requests=max(used.cached_requests, int(cached)),
            )
        )


class KeyframeImages:
    """The keyframes of one video as model inputs: each file read from disk once and encoded
    once, the result shared by every request that shows that keyframe.

    A saved JPEG already within ``max_side`` is sent byte for byte (no re-encode).
    :meth:`release` drops what the sliding window no longer needs, so memory stays bounded
    on long videos.
    """

    def __init__(
        self,
        base_dir: Path | None,
        keyframes: Sequence[Keyframe],
        max_side: int,
        quality: int = 90,
        arrays: Sequence[Any] | None = None,
    ) -> None:
        self.base_dir = Path(base_dir) if base_dir is not None else None
        #: In-memory frames (a KeyframeSet extracted without an output dir), used instead
        #: of files when given.
        self.arrays = arrays
        self.keyframes = list(keyframes)
        self.max_side = max_side
        self.quality = quality
        self._raw: dict[int, bytes] = {}
        self._inputs: dict[int, ImageInput] = {}
        self._decoded: dict[int, Image.Image] = {}
        self.reads = 0  # files read from disk (tests check "once")

    def path(self, i: int) -> Path:
        kf = self.keyframes[i]
        if not kf.file or self.base_dir is None:
            raise FileNotFoundError(f"keyframe {kf.idx} at {kf.time:.3f} s has no image file")
        return self.base_dir / kf.file

    # These run in worker threads while release() may run on the loop: each returns the
    # value it made or found, never a second lookup that a release could have emptied.
    def _read(self, i: int) -> bytes:
        data = self._raw.get(i)
        if data is None:
            data = self._raw[i] = self.path(i).read_bytes()
            self.reads += 1
        return data

    def _decode(self, i: int) -> Image.Image:
        image = self._decoded.get(i)
        if image is None:
            if self.arrays is not None:
                image = to_pil(self.arrays[i])
            else:
                image = to_pil(Image.open(io.BytesIO(self._read(i))))
            self._decoded[i] = image
        return image

    def _encode(self, i: int) -> ImageInput:
        found = self._inputs.get(i)
        if found is not None:
            return found
        if self.arrays is not None:
            made = ImageInput(encode_jpeg(self._decode(i), self.max_side, self.quality))
        else:
            data = self._read(i)
            probe = Image.open(io.BytesIO(data))  # header only; no pixel decode
            if probe.format == "JPEG" and probe.mode == "RGB" and max(probe.size) <= self.max_side:
                made = ImageInput(data, "image/jpeg")
            else:
                made = ImageInput(encode_jpeg(self._decode(i), self.max_side, self.quality))
        self._inputs[i] = made
        return made

    async def input(self, i: int) -> ImageInput:
        """The encoded image of keyframe ``i`` (the same object on every call)."""
        found = self._inputs.get(i)
        return found if found is not None else await asyncio.to_thread(self._encode, i)

    async def decoded(self, i: int) -> Image.Image:
        found = self._decoded.get(i)
        return found if found is not None else await asyncio.to_thread(self._decode, i)

    async def composite(self, indices: Sequence[int], gap: int = 50) -> ImageInput:
        """One image: the keyframes stacked vertically with a ``gap``-px white band."""
        images = [await self.decoded(i) for i in indices]
        # The composite holds two frames, so it may be twice as tall as one frame's cap.
        cap = self.max_side * len(images) + gap

        def build() -> ImageInput:
            return ImageInput(encode_jpeg(vertical_composite(images, gap), cap, self.quality))

        return await asyncio.to_thread(build)

    def release(self, i: int) -> None:
        for cache in (self._raw, self._inputs, self._decoded):
            cache.pop(i, None)
