"""The one prompt builder of in-process models: chat messages, the rendered chat text and the
processor call, shared by inference (:mod:`diffcap.models.transformers_backend`) and training
(:mod:`diffcap.train`), so a fine-tuned model sees at inference exactly the input it was
trained on.

    messages = chat_messages("Describe.", n_images=2, system=None)
    text = render_prompt(processor, messages)           # chat template + generation prompt
    batch = encode_prompts(processor, [text], [[img1, img2]])   # input_ids, pixel_values, ...

Images come first in the user turn, then the prompt text (the order every captioning mode
sends them in); the system prompt of the template preset, when it has one, is its own turn.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from diffcap.models.base import ModelRequest

log = logging.getLogger(__name__)

__all__ = [
    "chat_messages",
    "encode_prompts",
    "pil_image",
    "render_prompt",
    "render_requests",
    "tokenizer_of",
]


def chat_messages(prompt: str, n_images: int, system: str | None = None) -> list[dict[str, Any]]:
    """The chat of one request: optional system turn, then one user turn (images, text)."""
    content: list[dict[str, Any]] = [{"type": "image"} for _ in range(n_images)]
    content.append({"type": "text", "text": prompt})
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
    messages.append({"role": "user", "content": content})
    return messages


def render_prompt(processor: Any, messages: list[dict[str, Any]]) -> str:
    """The chat template applied to ``messages``, ending with the assistant's turn opener:
    the text the model continues (at inference) or is taught to continue (in training)."""
    return str(processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))


def render_requests(
    processor: Any, requests: Sequence[ModelRequest]
) -> tuple[list[str], list[list[Any]]]:
    """The rendered chat texts and the PIL images of ``requests``: what a model is fed."""
    texts = [
        render_prompt(processor, chat_messages(r.prompt, len(r.images), r.system))
        + str(r.options_dict.get("prefill") or "")  # the reply's start (an eval's prefill)
        for r in requests
    ]
    return texts, [[pil_image(img.data) for img in r.images] for r in requests]


def pil_image(data: bytes) -> Any:
    """Encoded image bytes -> an RGB PIL image."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB")


def encode_prompts(
    processor: Any,
    texts: Sequence[str],
    images: Sequence[Sequence[Any]],
    *,
    padding_side: str = "left",
) -> Any:
    """The processor call for a batch of rendered prompts and their PIL images (tensors;
    left padding as decoder-only generation needs it)."""
    call: dict[str, Any] = {
        "text": list(texts),
        "padding": True,
        "padding_side": padding_side,
        "return_tensors": "pt",
    }
    if any(images):
        call["images"] = [list(group) for group in images]
    return processor(**call)


def tokenizer_of(processor: Any) -> Any:
    """The tokenizer inside a processor (or the processor itself when it is one)."""
    return getattr(processor, "tokenizer", processor)


def folder_image_cost(folder: str | Path, max_side: int) -> int | None:
    """Prompt tokens of one ``max_side`` x ``max_side`` image for the processor saved in a
    model folder (the processor's own expansion of the image placeholder); None when no
    processor can be loaded here."""
    try:
        from transformers import AutoProcessor
    except ImportError:
        return None
    try:
        processor = AutoProcessor.from_pretrained(str(Path(folder).expanduser()))
    except Exception as exc:
        log.info("no processor in %s (%s)", folder, exc)
        return None
    return processor_image_cost(processor, max_side)


def processor_image_cost(processor: Any, max_side: int) -> int | None:
    """Tokens one image adds to a prompt, measured with the processor itself."""
    from PIL import Image

    image = Image.new("RGB", (max_side, max_side), (128, 128, 128))
    try:
        with_image = encode_prompts(
            processor, [render_prompt(processor, chat_messages("x", 1))], [[image]]
        )
        without = encode_prompts(processor, [render_prompt(processor, chat_messages("x", 0))], [[]])
    except Exception as exc:  # a processor that needs more than we give it
        log.info("cannot measure an image's token cost with %s (%s)", type(processor), exc)
        return None
    return int(with_image["input_ids"].shape[1] - without["input_ids"].shape[1])
