"""One-sentence captions for semantic de-dup, from a few frames and the ``short_caption``
template (the paper used a cheap captioner, Panda-Student, for this step).

    text = await short_caption("a.mp4", backend, templates, ModelConfig(), duration=12.0)
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diffcap.captioning.calls import Caller
from diffcap.captioning.images import encode_jpeg, vertical_composite
from diffcap.config import ModelConfig
from diffcap.models.base import Backend, ImageInput
from diffcap.video import open_video

if TYPE_CHECKING:
    from diffcap.prompts.presets import TemplateSet

log = logging.getLogger(__name__)

#: Frames shown to the model: at 1/6, 3/6 and 5/6 of the span (avoids fades at the ends).
SAMPLE_POINTS = (1 / 6, 1 / 2, 5 / 6)


def sample_images(
    path: str | Path, start: float, duration: float, max_side: int
) -> list[ImageInput]:
    """Decode a few frames of [start, start+duration] and encode them as JPEG."""
    times = [start + p * duration for p in SAMPLE_POINTS]
    with open_video(path) as src:
        frames = [f.image for f in src.frames_at(times)]
    return [ImageInput(encode_jpeg(img, max_side)) for img in frames]


async def short_caption(
    path: str | Path,
    backend: Backend,
    templates: TemplateSet,
    model_cfg: ModelConfig,
    *,
    duration: float,
    start: float = 0.0,
    limiter: asyncio.Semaphore | None = None,
    video_id: str = "",
) -> str:
    """A one-sentence caption of the video (or span), through ``backend``."""
    # Short captions are cheap by design: small frames and few tokens.
    side = min(model_cfg.image_max_side, 512)
    images = await asyncio.to_thread(sample_images, path, start, duration, side)
    if not getattr(backend, "supports_multi_image", True) and len(images) > 1:
        composite = vertical_composite([_decode(i) for i in images], 20)
        images = [ImageInput(encode_jpeg(composite, side * len(images)))]
    caller = Caller(
        backend,
        options={"max_tokens": min(model_cfg.max_tokens, 96)},
        limiter=limiter,
        system=getattr(templates, "system", None),
        tags=(("video_id", video_id),),
    )
    prompt = templates["short_caption"].render(duration=duration)
    return (await caller.ask(prompt, images, step="short_caption")).strip()


def _decode(image: ImageInput) -> Any:
    import io

    from PIL import Image

    return Image.open(io.BytesIO(image.data)).convert("RGB")
