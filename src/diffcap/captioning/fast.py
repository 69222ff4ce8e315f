"""Fast captioning: all keyframes tiled into one labelled image, one caption.

Suited to short videos. The keyframes (evenly subsampled to ``fast_max_frames``) become a
row-major grid or a vertical strip (``CaptionConfig.fast_layout``) with an index + time label
on each frame and separator bands, scaled so the longest side is at most ``fast_max_side``.
The single caption is stored as the summary (idx ``"-1"``); fast records carry no
per-keyframe captions, because no request ever describes a single keyframe.

    caption, used = await caption_fast(keyframes, images, caller, templates, cfg,
                                       span=Span(0.0, 8.0, 8.0))
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from diffcap.captioning.calls import Caller, KeyframeImages, Span
from diffcap.captioning.images import encode_jpeg, subsample_even, tile_grid, vertical_strip
from diffcap.config import CaptionConfig
from diffcap.models.base import ImageInput
from diffcap.timeline import Caption, Keyframe, format_time

if TYPE_CHECKING:
    from diffcap.prompts.presets import TemplateSet


def frame_label(number: int, time: float) -> str:
    """``#3 00:04.00``: the index (from 1, as in the prompts) and the true time."""
    return f"#{number} {format_time(time)}"


async def fast_image(
    keyframes: Sequence[Keyframe], images: KeyframeImages, cfg: CaptionConfig
) -> tuple[ImageInput, list[int]]:
    """The tiled image and the positions (into ``keyframes``) of the frames it shows."""
    keep = subsample_even(len(keyframes), cfg.fast_max_frames)
    decoded = [await images.decoded(i) for i in keep]
    labels = [frame_label(n + 1, keyframes[i].time) for n, i in enumerate(keep)]

    def build() -> ImageInput:
        if cfg.fast_layout == "strip":
            img = vertical_strip(decoded, labels=labels, max_size=cfg.fast_max_side)
        else:
            img = tile_grid(decoded, labels=labels, max_size=cfg.fast_max_side)
        return ImageInput(encode_jpeg(img, cfg.fast_max_side, images.quality))

    image = await asyncio.to_thread(build)
    for i in keep:
        images.release(i)
    return image, keep


async def caption_fast(
    keyframes: Sequence[Keyframe],
    images: KeyframeImages,
    caller: Caller,
    templates: TemplateSet,
    cfg: CaptionConfig,
    *,
    span: Span,
) -> tuple[Caption, list[int]]:
    """-> (the summary caption, positions of the keyframes shown in the tiled image)."""
    image, keep = await fast_image(keyframes, images, cfg)
    prompt = templates["fast"].render(
        num_frames=len(keep),
        times=[keyframes[i].time for i in keep],
        layout=cfg.fast_layout,
        **span.variables(),
    )
    text = await caller.ask(prompt, [image], step="fast")
    return Caption(idx="-1", content=text, start=span.start, end=span.end), keep
