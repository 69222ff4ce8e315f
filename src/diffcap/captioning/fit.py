"""Fitting one DiffSW step into the model's context.

The differential prompt carries the previous caption. When the whole prompt would not fit,
the previous caption keeps its **most recent part**: the last whole sentences that fit,
after a leading ``"… "`` (one very long last sentence keeps its last characters). What
happened last matters most for saying what changes next; older context is what the summary
keeps. A server that still refuses the request halves what is kept and the step is sent
again, at most :data:`MAX_SPLITS` times.

    keep_recent("A dog sits. It stands up. It runs.", 6, counter)   # "… It runs."
"""

from __future__ import annotations

import re
from collections.abc import Callable

from diffcap.captioning.calls import Caller
from diffcap.errors import ContextExceeded
from diffcap.models.base import ImageInput
from diffcap.models.context import TokenCounter

#: Times a step that the server refuses as over the context is shrunk and sent again.
MAX_SPLITS = 4
ELLIPSIS = "… "
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def keep_recent(text: str, max_tokens: int, counter: TokenCounter) -> str:
    """The end of ``text`` that fits in ``max_tokens`` (see the module docstring)."""
    if max_tokens <= 0 or not text:
        return ""
    if counter.count(text) <= max_tokens:
        return text
    sentences = [s for s in _SENTENCE_END.split(text.strip()) if s]
    kept: list[str] = []
    for sentence in reversed(sentences):
        candidate = ELLIPSIS + " ".join([sentence, *kept])
        if counter.count(candidate) > max_tokens:
            break
        kept.insert(0, sentence)
    if kept:
        return ELLIPSIS + " ".join(kept)
    # One long last sentence: its last characters (binary search on the suffix length).
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if counter.count(ELLIPSIS + text[-mid:].lstrip()) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return ELLIPSIS + text[-lo:].lstrip() if lo else ""


async def ask_with_previous(
    caller: Caller,
    render: Callable[[str], str],
    previous: str,
    images: list[ImageInput],
    *,
    image_units: int,
    step: str,
    what: str,
) -> str:
    """Send the prompt ``render(previous')`` where ``previous'`` is the longest recent part
    of ``previous`` that fits; shrink and resend when the server refuses it."""
    budget = caller.budget
    kept = previous
    for _ in range(MAX_SPLITS + 1):
        prompt = render(kept)
        if budget is not None and not await caller.ensure_fits(prompt, image_units):
            room = budget.room(image_units) - caller.prompt_tokens(render(""))
            if room < 0 and await budget.calibrate():
                room = budget.room(image_units) - caller.prompt_tokens(render(""))
            if room < 0:
                fixed = caller.prompt_tokens(render(""))
                raise budget.too_small(what, fixed, image_units, caller.model_name)
            kept, prompt = _shrink_to_fit(caller, render, kept, room, image_units)
        try:
            return await caller.ask(prompt, images, step=step, image_units=image_units)
        except ContextExceeded as exc:
            if budget is None or not kept:
                if budget is not None:
                    fixed = caller.prompt_tokens(render(""))
                    raise budget.too_small(what, fixed, image_units, caller.model_name) from exc
                raise
            # The server knows better than our count: keep half as much and send again.
            kept = keep_recent(kept, budget.tokens(kept) // 2, budget.counter)
    raise ContextExceeded(f"{step}: still over the context after {MAX_SPLITS} splits")


def _shrink_to_fit(
    caller: Caller, render: Callable[[str], str], text: str, room: int, image_units: int
) -> tuple[str, str]:
    """(the kept part of ``text``, the prompt with it) such that the whole prompt fits:
    token counts of pieces do not add up exactly, so the rendered prompt is checked and the
    room lowered by the overshoot (at most three times)."""
    budget = caller.budget
    kept = keep_recent(text, room, budget.counter)
    for _ in range(3):
        prompt = render(kept)
        over = caller.prompt_tokens(prompt) - budget.room(image_units)
        if over <= 0:
            return kept, prompt
        room -= over + 1
        kept = keep_recent(kept, room, budget.counter)
    return kept, render(kept)
