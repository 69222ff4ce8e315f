"""Differential sliding-window captioning (DiffSW) and the whole-video summary.

The first keyframe gets a detailed caption. Every next keyframe ``k`` is shown together with
keyframe ``k-1`` (two images, or one vertical composite for one-image models), both real
timestamps and the previous differential caption, and the model says what changed. One
text-only call then summarises the timeline. A video's chain is strictly sequential; many
videos run concurrently (see :mod:`diffcap.captioning.runner`).

    captions = await caption_slide(keyframes, images, caller, templates, layout="two_images",
                                   span=Span(0.0, 12.0, 12.0))
    [c.idx for c in captions]           # ["0", "1", ..., "-1"]

Prompt variables: ``index``/``prev_index`` count keyframes from 1 (as the released prompts
do); ``time``/``prev_time`` are the keyframes' true times in seconds from the start of the
file, and ``start``/``end``/``duration``/``scope`` describe the captioned window (see
:class:`~diffcap.captioning.calls.Span`), so times in one prompt share one clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from diffcap.captioning.calls import Caller, KeyframeImages, Span
from diffcap.captioning.camera_facts import camera_fact
from diffcap.captioning.fit import ask_with_previous
from diffcap.config import CaptionConfig
from diffcap.errors import ContextExceeded
from diffcap.models.base import Backend, ImageInput
from diffcap.timeline import Caption, Keyframe

if TYPE_CHECKING:
    from diffcap.prompts.presets import TemplateSet

log = logging.getLogger(__name__)

PairLayout = Literal["two_images", "composite"]


def resolve_pair_layout(
    cfg: CaptionConfig, backend: Backend, templates: TemplateSet | None = None
) -> PairLayout:
    """An explicit ``cfg.pair_layout`` wins. ``auto`` -> the template preset's layout
    (``TemplateSet.pair_layout``, e.g. sharecaptioner: composite) if it has one, else two
    images; a backend that takes one image per request always gets a composite."""
    if cfg.pair_layout != "auto":
        return cfg.pair_layout
    preset = getattr(templates, "pair_layout", None)
    if preset == "composite" or not backend.supports_multi_image:
        return "composite"
    return "two_images"


async def pair_inputs(
    images: KeyframeImages, prev: int, cur: int, layout: PairLayout
) -> list[ImageInput]:
    if layout == "two_images":
        return [await images.input(prev), await images.input(cur)]
    return [await images.composite([prev, cur])]


class ChainHalted(Exception):
    """A segment's chain stopped because another segment of the video failed."""


@dataclass
class Chain:
    """One video's slide-mode context: what every DiffSW step needs."""

    keyframes: Sequence[Keyframe]
    images: KeyframeImages
    caller: Caller
    templates: TemplateSet
    layout: PairLayout
    span: Span
    #: State each interval's measured camera motion in ``{camera}`` (caption.camera_facts).
    camera_facts: bool = False
    #: Set when a sibling chain failed: no new request is started (those in flight finish
    #: and their answers are kept in the request cache, so a rerun pays nothing twice).
    halt: asyncio.Event | None = None

    def check_halt(self) -> None:
        if self.halt is not None and self.halt.is_set():
            raise ChainHalted("a sibling segment failed")

    def common(self) -> dict[str, Any]:
        return {"num_frames": len(self.keyframes), **self.span.variables()}

    async def first(self, i: int) -> str:
        """The detailed caption of keyframe ``i`` (the first of a chain)."""
        kf = self.keyframes[i]
        prompt = self.templates["first_frame"].render(index=i + 1, time=kf.time, **self.common())
        image = [await self.images.input(i)]
        for _ in range(2):
            try:
                return await self.caller.ask(prompt, image, step="first_frame")
            except ContextExceeded as exc:
                b = self.caller.budget
                if b is not None and await b.calibrate():
                    continue  # measured counts may fit where the estimate did not
                if b is None:
                    raise
                what = f"the first-frame request of keyframe {i} at {kf.time:.1f} s"
                tokens = self.caller.prompt_tokens(prompt)
                raise b.too_small(what, tokens, 1, self.caller.model_name) from exc
        raise ContextExceeded(f"first_frame {i}: over the context")

    async def differential(self, k: int, previous: str) -> str:
        """What changed between keyframes ``k-1`` and ``k``; ``previous`` is the caption of
        ``k-1`` (its most recent part when the prompt would not fit otherwise)."""
        prev, cur = self.keyframes[k - 1], self.keyframes[k]
        common = self.common()

        def render(text: str) -> str:
            return self.templates["differential"].render(
                prev_index=k,
                prev_time=prev.time,
                index=k + 1,
                time=cur.time,
                previous=text,
                layout=self.layout,
                camera=camera_fact(prev, cur) if self.camera_facts else "",
                **common,
            )

        return await ask_with_previous(
            self.caller,
            render,
            previous,
            await pair_inputs(self.images, k - 1, k, self.layout),
            image_units=2,
            step=f"differential:{k}",
            what=f"the differential request of keyframes {k - 1}-{k} ({cur.time:.1f} s)",
        )

    async def run(self, start: int, end: int) -> list[Caption]:
        """Captions of keyframes ``start .. end-1``: the first in detail, then each change."""
        kfs = self.keyframes
        self.check_halt()
        captions = [Caption(idx=str(start), content=await self.first(start), time=kfs[start].time)]
        for k in range(start + 1, end):
            self.check_halt()
            text = await self.differential(k, captions[-1].content)
            captions.append(Caption(idx=str(k), content=text, time=kfs[k].time))
            self.images.release(k - 1)  # the window has moved on: keep memory bounded
        self.images.release(end - 1)
        return captions


async def caption_slide(
    keyframes: Sequence[Keyframe],
    images: KeyframeImages,
    caller: Caller,
    templates: TemplateSet,
    *,
    layout: PairLayout,
    span: Span,
    camera_facts: bool = False,
) -> list[Caption]:
    """The differential captions ``"0"``, ``"1"``, ... in keyframe order (one chain);
    ``camera_facts``: each prompt's ``{camera}`` states the interval's measured camera motion."""
    chain = Chain(keyframes, images, caller, templates, layout, span, camera_facts)
    return await chain.run(0, len(keyframes))
