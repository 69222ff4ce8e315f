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

import logging
from collections.abc import Sequence
from typing import Any, Literal

from diffcap.captioning.calls import Caller, KeyframeImages, Span
from diffcap.captioning.camera_facts import camera_fact
from diffcap.config import CaptionConfig
from diffcap.models.base import Backend, ImageInput
from diffcap.timeline import Caption, Keyframe

log = logging.getLogger(__name__)

PairLayout = Literal["two_images", "composite"]


def resolve_pair_layout(cfg: CaptionConfig, backend: Backend, templates: Any = None) -> PairLayout:
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


async def caption_slide(
    keyframes: Sequence[Keyframe],
    images: KeyframeImages,
    caller: Caller,
    templates: Any,
    *,
    layout: PairLayout,
    span: Span,
    camera_facts: bool = False,
) -> list[Caption]:
    """The differential captions ``"0"``, ``"1"``, ... in keyframe order; ``camera_facts``:
    each prompt's ``{camera}`` states the interval's measured camera motion."""
    n = len(keyframes)
    common = {"num_frames": n, **span.variables()}
    first = keyframes[0]
    prompt = templates["first_frame"].render(index=1, time=first.time, **common)
    text = await caller.ask(prompt, [await images.input(0)], step="first_frame")
    captions = [Caption(idx="0", content=text, time=first.time)]
    for k in range(1, n):
        prev, cur = keyframes[k - 1], keyframes[k]
        prompt = templates["differential"].render(
            prev_index=k,
            prev_time=prev.time,
            index=k + 1,
            time=cur.time,
            previous=captions[-1].content,
            layout=layout,
            camera=camera_fact(prev, cur) if camera_facts else "",
            **common,
        )
        text = await caller.ask(
            prompt, await pair_inputs(images, k - 1, k, layout), step=f"differential:{k}"
        )
        captions.append(Caption(idx=str(k), content=text, time=cur.time))
        images.release(k - 1)  # the window has moved on: keep memory bounded
    images.release(n - 1)
    return captions


async def summarize_timeline(
    timeline: Sequence[Caption],
    caller: Caller,
    templates: Any,
    *,
    span: Span,
    model: str | None = None,
    camera: str = "",
) -> Caption:
    """One text-only call: the (time, caption) lines -> the caption of ``span`` (idx "-1");
    ``camera``: the measured camera motion facts (``camera_summary``) for ``{camera}``."""
    prompt = templates["summary"].render(
        timeline=list(timeline), num_frames=len(timeline), camera=camera, **span.variables()
    )
    text = await caller.ask(prompt, (), step="summary", model=model)
    return Caption(idx="-1", content=text, start=span.start, end=span.end)
