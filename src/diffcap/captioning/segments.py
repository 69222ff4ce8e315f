"""Long videos as parallel DiffSW segments joined by bridge calls.

One DiffSW chain is sequential: N keyframes cost N model round trips one after the other,
whatever the server's capacity. Above ``caption.segment_after_s`` (``caption.chain=auto``)
the keyframes are cut into segments of about ``caption.segment_keyframes`` at the largest
visual breaks (:func:`visual_breaks`); each segment's chain starts with a detailed
first-frame caption and all chains run at once under the run's concurrency limit. Each
boundary gets one differential call between the last keyframe of a segment and the first of
the next (with the earlier segment's last caption as context), so every keyframe after the
first still has a difference caption: the timeline has no seam.

The record's ``captions`` stay one caption per keyframe in time order; at a segment's first
keyframe that caption is the bridge's; the segment's own detailed caption is kept in the
record's ``segments`` list.

    ranges = plan_segments(breaks, target=32)                 # [(0, 31), (31, 64), ...]
    captions, segments = await caption_segments(chain, ranges)
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from diffcap.captioning.calls import KeyframeImages
from diffcap.captioning.slide import Chain, ChainHalted
from diffcap.captioning.tree import SLACK, plan_groups
from diffcap.config import CaptionConfig
from diffcap.timeline import Caption

log = logging.getLogger(__name__)

#: Side of the thumbnails whose differences score visual breaks.
THUMB = 16


def wants_segments(cfg: CaptionConfig, n_keyframes: int, seconds: float) -> bool:
    """``chain=segments``, or ``auto`` and the captioned window is longer than
    ``segment_after_s`` with more keyframes than one segment holds."""
    if cfg.chain == "single" or n_keyframes <= cfg.segment_keyframes:
        return False
    return cfg.chain == "segments" or seconds > cfg.segment_after_s


def plan_segments(breaks: Sequence[float], n: int, target: int) -> list[tuple[int, int]]:
    """Keyframe ranges ``[a, b)``: about ``ceil(n / target)`` segments of about ``target``
    keyframes (one more when cuts at breaks leave too much), each cut at the largest break
    within a quarter of an even split."""
    if n <= target:
        return [(0, n)]
    parts = math.ceil(n / target)
    room = math.ceil(n / parts * (1 + SLACK))
    return plan_groups([1] * n, room, breaks, parts=parts)


def _thumb(data: bytes | None, array: Any) -> np.ndarray:
    from PIL import Image

    if array is not None:
        im = Image.fromarray(np.asarray(array))
    else:
        im = Image.open(io.BytesIO(data or b""))
        im.draft("RGB", (THUMB * 4, THUMB * 4))  # JPEG: decode at a fraction of the size
    return np.asarray(im.convert("RGB").resize((THUMB, THUMB)), dtype=np.float32)


def visual_breaks(images: KeyframeImages) -> list[float]:
    """The break after each keyframe: the mean absolute difference of its thumbnail and the
    next keyframe's, over 255 (0 = same picture). Read one image at a time (bounded memory);
    an unreadable image scores 0."""
    n = len(images.keyframes)
    out: list[float] = []
    prev: np.ndarray | None = None
    for i in range(n):
        try:
            array = images.arrays[i] if images.arrays is not None else None
            cur = _thumb(None if array is not None else images.path(i).read_bytes(), array)
        except (OSError, ValueError) as exc:
            log.debug("keyframe %d: no thumbnail (%s)", i, exc)
            cur = None
        if i > 0:
            ok = prev is not None and cur is not None
            out.append(float(np.abs(cur - prev).mean() / 255.0) if ok else 0.0)  # type: ignore[operator]
        prev = cur
    return out


async def caption_segments(
    chain: Chain, ranges: Sequence[tuple[int, int]]
) -> tuple[list[Caption], list[dict[str, Any]]]:
    """Every segment's chain at once, then a bridge at each boundary; -> (one caption per
    keyframe in order, the ``segments`` of the record)."""
    chain.halt = asyncio.Event()

    async def run(a: int, b: int) -> list[Caption]:
        try:
            return await chain.run(a, b)
        except BaseException:
            chain.halt.set()  # type: ignore[union-attr]
            raise

    runs = [asyncio.ensure_future(run(a, b)) for a, b in ranges]

    async def bridge(i: int) -> Caption:
        before = await runs[i - 1]  # the bridge needs the earlier segment's last caption
        k = ranges[i][0]
        chain.check_halt()
        text = await chain.differential(k, before[-1].content)
        chain.images.release(k - 1)  # (k belongs to the next segment's chain)
        return Caption(idx=str(k), content=text, time=chain.keyframes[k].time)

    bridges = [asyncio.ensure_future(bridge(i)) for i in range(1, len(ranges))]
    # A failure stops new requests but never cancels one in flight: its answer is paid for,
    # so it must reach the request cache (a rerun replays it).
    done = await asyncio.gather(*runs, *bridges, return_exceptions=True)
    errors = [r for r in done if isinstance(r, BaseException)]
    if errors:
        raise next((e for e in errors if not isinstance(e, ChainHalted)), errors[0])
    chains = [r for r in done[: len(runs)] if isinstance(r, list)]
    joins = [r for r in done[len(runs) :] if isinstance(r, Caption)]
    captions: list[Caption] = list(chains[0])
    segments = [_segment(ranges[0], chains[0])]
    for (a, b), caps, join in zip(ranges[1:], chains[1:], joins, strict=True):
        captions.append(join)
        captions.extend(caps[1:])
        segments.append(_segment((a, b), caps))
    return captions, segments


def _segment(rng: tuple[int, int], caps: Sequence[Caption]) -> dict[str, Any]:
    return {
        "start_idx": rng[0],
        "end_idx": rng[1] - 1,
        "start": round(float(caps[0].time or 0.0), 6),
        "end": round(float(caps[-1].time or 0.0), 6),
        "first_caption": caps[0].content,
    }
