"""The prompt budget: how many tokens a request may spend, known before it is sent.

A request fits when ``prompt tokens + images x image cost + overhead + max_tokens`` is at
most the model's context window (less a small margin for counting error). The window comes
from the backend (:meth:`~diffcap.models.base.Backend.context_window`); prompt tokens are
counted with the model's tokenizer where the backend has one, else estimated; an image's cost
comes from the model's processor, else from two small probe requests, else a conservative
default. Captioning steps use :meth:`PromptBudget.room` to fit their prompts by construction
(:mod:`diffcap.captioning.fit`, :mod:`diffcap.captioning.tree`); a server that still answers
"over the context" teaches the budget its real limit (:meth:`PromptBudget.learn`).

    budget = await build_budget(backend, model_cfg, max_tokens=512)
    budget.room(n_images=2)      # tokens left for the text of a two-image prompt
    budget.fits("Describe.", n_images=1)
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from diffcap.config import ModelConfig
from diffcap.errors import ContextTooSmall, DiffcapError
from diffcap.models.base import Backend, ImageInput, ModelRequest
from diffcap.models.context import ContextWindow, EstimateCounter, TokenCounter

log = logging.getLogger(__name__)

#: Tokens one image is assumed to cost when neither the processor nor a probe says.
FALLBACK_IMAGE_TOKENS = 1500
#: Tokens of the chat template around one request (roles, separators, the answer opener).
CHAT_OVERHEAD = 32
#: Share of the window kept free for counting error (estimates, templates).
MARGIN = 0.03
#: Text of the probe requests (representative caption prose: tokens per byte of this text
#: calibrate the estimate when no tokenizer is known).
PROBE_TEXT = (
    "A man in a red jacket walks a brown dog along a sandy beach at sunset while the camera "
    "pans slowly to the left. Two children play with a blue ball near a small lake; a woman "
    "sits at a wooden table and pours coffee into a white cup. The scene cuts to a close-up "
    "of the dog, which shakes water from its fur, then to a wide shot of the shore. "
) * 4


@dataclass
class PromptBudget:
    """Token accounting for one model (see the module docstring)."""

    window: ContextWindow
    max_tokens: int
    counter: TokenCounter = field(default_factory=EstimateCounter)
    image_tokens: int = FALLBACK_IMAGE_TOKENS
    image_source: str = "fallback"
    overhead: int = CHAT_OVERHEAD
    #: The window as planned now: lowered by :meth:`learn`.
    effective: int = 0
    #: Measures the real counts (probe requests) the first time an estimate says a request
    #: would not fit: short work never pays for it.
    calibrator: Callable[[PromptBudget], Awaitable[None]] | None = None

    def __post_init__(self) -> None:
        self.effective = self.effective or self.window.tokens
        self._calibrating: asyncio.Lock | None = None
        #: A window nobody stated (the fallback) is not planned with: requests are sent as
        #: they are until a server refuses one and states (or implies) its limit.
        self.enforced = not self.window.source.startswith("fallback")

    async def calibrate(self) -> bool:
        """Run the calibrator once (later calls wait for it); False when there is none."""
        if self.calibrator is None:
            return False
        if self._calibrating is None:
            self._calibrating = asyncio.Lock()
        async with self._calibrating:
            if self.calibrator is not None:
                run, self.calibrator = self.calibrator, None
                await run(self)
        return True

    @property
    def context(self) -> int:
        return self.effective

    def tokens(self, text: str) -> int:
        return self.counter.count(text)

    def reserve(self) -> int:
        return self.max_tokens + self.overhead + math.ceil(self.effective * MARGIN)

    def room(self, n_images: int = 0) -> int:
        """Tokens left for the prompt text of a request with ``n_images`` images (unbounded
        while the window is unknown)."""
        if not self.enforced:
            return 1 << 40
        return self.effective - self.reserve() - n_images * self.image_tokens

    def need(self, prompt: str, n_images: int = 0) -> int:
        """Tokens a request needs in all: text, images, overhead, margin and the answer."""
        return self.tokens(prompt) + n_images * self.image_tokens + self.reserve()

    def fits(self, prompt: str, n_images: int = 0) -> bool:
        return self.tokens(prompt) <= self.room(n_images)

    def learn(self, limit: int | None, planned: int | None = None) -> bool:
        """The server refused a request planned with the window ``planned`` as over its
        context. A stated ``limit`` below the current window becomes the window; otherwise
        (no limit stated, or our count was off) the window shrinks to 3/4 once per plan:
        concurrent refusals of requests planned with the same window shrink it once. True
        when the window got smaller."""
        if not self.enforced:
            self.enforced = True
            self.effective = limit or int(self.effective * 0.75)
            new = self.effective
        elif limit and limit < self.effective:
            new = limit
        elif planned is not None and planned != self.effective:
            return False  # another refusal already taught us; plan again with that
        else:
            new = int(self.effective * 0.75)
        if new < 256:
            return False
        log.warning(
            "the server refused a request as over the context; planning with %d tokens (was %s)",
            new,
            planned if planned is not None else self.effective,
        )
        self.effective = new
        return True

    def describe(self) -> str:
        return (
            f"context {self.effective:,} tokens ({self.window.source}); answers up to "
            f"{self.max_tokens:,}; {self.image_tokens:,} tokens per image ({self.image_source}); "
            f"counting with {self.counter.name}"
        )

    def too_small(self, what: str, prompt_tokens: int, n_images: int, model: str) -> DiffcapError:
        """The one-line error when even the smallest form of a request cannot fit."""
        need = prompt_tokens + n_images * self.image_tokens + self.reserve()
        return ContextTooSmall(
            f"{what} cannot fit the context of model {model!r}: it needs {need:,} tokens "
            f"({n_images} image(s) x {self.image_tokens:,} + prompt {prompt_tokens:,} + "
            f"answer {self.max_tokens:,} + overhead {self.reserve() - self.max_tokens:,}) but "
            f"the context is {self.effective:,} tokens ({self.window.source})",
            hint="lower --image-max-side or model.max_tokens, use a model with a longer "
            "context, or set model.context_tokens if the server accepts more",
        )


async def build_budget(
    backend: Backend,
    model_cfg: ModelConfig,
    *,
    max_tokens: int,
    images: bool = True,
    probe: Any = None,
) -> PromptBudget:
    """The budget of ``backend``'s model. ``probe`` (an async ``request -> response``, e.g.
    the run's cached backend) sends the calibration requests when the model's processor or
    tokenizer cannot be had and ``model_cfg.context_probe`` is on, the first time an
    estimate says a request would not fit (:meth:`PromptBudget.calibrate`); ``images=False``
    skips the image measurement (text-only work)."""
    window = await asyncio.to_thread(backend.context_window)
    counter = await asyncio.to_thread(_quiet, backend.token_counter)
    cost = await asyncio.to_thread(_quiet, backend.image_token_cost) if images else None
    budget = PromptBudget(window, max_tokens, counter or EstimateCounter())
    if cost:
        budget.image_tokens, budget.image_source = cost, "the model's processor"
    wants_probe = counter is None or (images and not cost)
    if wants_probe and model_cfg.context_probe and probe is not None and backend.name == "openai":

        async def calibrator(b: PromptBudget) -> None:
            await _calibrate(b, backend, model_cfg, probe, images=images, counted=counter)
            log.info("model %s after probing: %s", backend.model, b.describe())

        budget.calibrator = calibrator
    log.info("model %s: %s", backend.model, budget.describe())
    return budget


def _quiet(fn: Any) -> Any:
    try:
        return fn()
    except DiffcapError as exc:
        log.info("%s", exc)
        return None


async def _calibrate(
    budget: PromptBudget,
    backend: Backend,
    model_cfg: ModelConfig,
    probe: Any,
    *,
    images: bool,
    counted: TokenCounter | None,
) -> None:
    """Two one-token requests: the probe text alone, then with one gray image of the largest
    size sent. Their prompt-token counts give the server's tokens per byte (when no tokenizer
    is known) and the image's cost."""
    opts = ModelRequest.make_options({"max_tokens": 1, "temperature": 0})

    def request(imgs: tuple[ImageInput, ...]) -> ModelRequest:
        return ModelRequest(
            backend.model, PROBE_TEXT, imgs, options=opts, tags=(("step", "context_probe"),)
        )

    try:
        text_only = (await probe(request(()))).usage.prompt_tokens
        with_image = 0
        if images:
            image = _gray_image(model_cfg.image_max_side)
            with_image = (await probe(request((image,)))).usage.prompt_tokens
    except DiffcapError as exc:
        log.warning("context probe failed (%s); using conservative estimates", exc.message)
        return
    if counted is None and text_only > 0:
        # The probe's count includes the chat template: per byte this errs on the high side.
        bpt = len(PROBE_TEXT.encode()) / text_only
        budget.counter = EstimateCounter(bytes_per_token=bpt * 0.9, name="probe-calibrated")
    if images and with_image > text_only:
        budget.image_tokens = with_image - text_only
        budget.image_source = "a probe request"


def _gray_image(side: int) -> ImageInput:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (side, side), (128, 128, 128)).save(buf, "JPEG", quality=90)
    return ImageInput(buf.getvalue())
