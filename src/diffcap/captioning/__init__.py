"""The captioning modes of ShareCaptioner-Video, over any :class:`~diffcap.models.base.Backend`.

- ``slide`` (DiffSW, the default): first keyframe in detail, then what changed between each
  pair of consecutive keyframes (real timestamps, previous caption carried), then a summary.
- ``fast``: all keyframes tiled into one labelled image, one caption.
- clip summary: stored differential captions in [start, end] -> one clip caption, no frames.
- re-caption: a short text-to-video prompt -> a dense caption.

    import asyncio
    from diffcap.captioning import caption_keyframes, recaption
    record = asyncio.run(caption_keyframes(kset, backend, cfg.caption, cfg.model, templates,
                                           cfg.summary))
"""

from __future__ import annotations

from diffcap.captioning.calls import Caller, KeyframeImages, Span, generation_options
from diffcap.captioning.core import NoKeyframes, caption_keyframes, provenance
from diffcap.captioning.text import (
    NoCaptionsInRange,
    load_record,
    recaption,
    recaption_provenance,
    summarize_clip,
)

__all__ = [
    "Caller",
    "KeyframeImages",
    "NoCaptionsInRange",
    "NoKeyframes",
    "Span",
    "caption_keyframes",
    "generation_options",
    "load_record",
    "provenance",
    "recaption",
    "recaption_provenance",
    "summarize_clip",
]
