"""Text-only modes: clip summary over stored captions, and prompt re-captioning.

Neither decodes a frame. A clip summary turns the differential captions whose keyframe time
falls in ``[start, end]`` into one caption for that clip (how ShareGPT4Video got ~400K extra
"implicit clip" captions from 40K videos). Re-captioning expands a short text-to-video prompt
into a dense caption in the style of the training captions.

    rec = VideoRecord.from_json(json.loads(line))
    clip = await summarize_clip(rec, 2.0, 8.0, backend, templates)
    clip.content, clip.start, clip.end
    dense = await recaption("a corgi runs on a beach at sunset", backend, templates)
    recaption_provenance(backend, templates)  # {"template": "diffcap/recaption@1", ...}
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diffcap import __version__
from diffcap.captioning.calls import Caller, Span, generation_options
from diffcap.captioning.tree import summarize_tree
from diffcap.config import ModelConfig
from diffcap.errors import ConfigError, DiffcapError
from diffcap.models.base import Backend
from diffcap.timeline import Caption, Usage, VideoRecord

if TYPE_CHECKING:
    from diffcap.prompts.presets import TemplateSet


class NoCaptionsInRange(DiffcapError):
    """A clip summary was asked for a time range that holds no stored caption."""

    reason = "no_captions_in_range"


def _caller(
    backend: Backend,
    templates: TemplateSet,
    model_cfg: ModelConfig | None,
    limiter: asyncio.Semaphore | None,
    usage: Usage | None,
) -> Caller:
    return Caller(
        backend,
        options=generation_options(model_cfg or ModelConfig(), templates),
        limiter=limiter,
        system=getattr(templates, "system", None),
        usage=usage if usage is not None else Usage(),
    )


def load_record(records: str | os.PathLike[str], video_id: str | None = None) -> VideoRecord:
    """The record of ``video_id`` from a records JSONL file (the only one when None); a live
    records file (``caption --live``) is one record."""
    from diffcap.io.livefile import is_live_file, read_record  # lazy: start-up

    if is_live_file(Path(records)):
        return VideoRecord.from_json(read_record(Path(records)))
    found, ids = None, []
    with open(records, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{records}:{n}: not a JSON line: {exc}") from exc
            ids.append(str(d.get("video_id")))
            if video_id is None or d.get("video_id") == video_id:
                found = VideoRecord.from_json(d)
                if video_id is not None:
                    return found
    if video_id is None and len(ids) == 1 and found is not None:
        return found
    if video_id is None:
        raise ConfigError(f"{records} holds {len(ids)} records", hint="pick one with --video-id")
    raise ConfigError(
        f"no record with video_id '{video_id}' in {records}",
        hint=f"known ids: {', '.join(ids[:10]) or 'none'}",
    )


def captions_in_range(record: VideoRecord, start: float, end: float) -> list[Caption]:
    """The record's differential captions with ``start <= time <= end``, in time order."""
    if end < start:
        raise NoCaptionsInRange(
            f"clip end {end:g} s is before its start {start:g} s", hint="pass --start < --end"
        )
    inside = [c for c in record.differential if c.time is not None and start <= c.time <= end]
    if not inside:
        times = ", ".join(f"{c.time:g}" for c in record.differential if c.time is not None)
        raise NoCaptionsInRange(
            f"video '{record.video_id}' has no caption between {start:g} s and {end:g} s "
            f"(caption times: {times or 'none'})",
            hint="choose a range that contains at least one caption time; fast-mode records "
            "have no per-keyframe captions",
        )
    return sorted(inside, key=lambda c: c.time or 0.0)


async def summarize_clip(
    record: VideoRecord,
    start: float,
    end: float,
    backend: Backend,
    templates: TemplateSet,
    **options: Any,
) -> Caption:
    """Summarise the stored captions in ``[start, end]`` into one clip caption (idx "-1").

    ``options``: those of :func:`summarize_clip_tree` (``model_cfg``, ``limiter``, ``usage``
    accumulating tokens and cost, ``budget`` making a long range a tree), which returns the
    tree too.
    """
    caption, _ = await summarize_clip_tree(record, start, end, backend, templates, **options)
    return caption


async def summarize_clip_tree(
    record: VideoRecord,
    start: float,
    end: float,
    backend: Backend,
    templates: TemplateSet,
    *,
    model_cfg: ModelConfig | None = None,
    limiter: asyncio.Semaphore | None = None,
    usage: Usage | None = None,
    budget: Any = None,
) -> tuple[Caption, dict[str, Any] | None]:
    """:func:`summarize_clip` and the summary tree when one request could not hold the
    range (None otherwise)."""
    inside = captions_in_range(record, start, end)
    caller = _caller(backend, templates, model_cfg, limiter, usage)
    caller.budget = budget
    # ``duration`` is the clip's length, as for every windowed prompt (Span).
    span = Span(start, end, record.duration)
    caption, tree = await summarize_tree(
        inside, caller, templates, span=span, single="clip_summary"
    )
    return Caption(idx="-1", content=caption.content, start=start, end=end), tree


async def recaption(
    text: str,
    backend: Backend,
    templates: TemplateSet,
    *,
    model_cfg: ModelConfig | None = None,
    limiter: asyncio.Semaphore | None = None,
    usage: Usage | None = None,
) -> str:
    """Expand a short generation prompt into a dense caption (the ``recaption`` template)."""
    if not text.strip():
        raise DiffcapError("cannot re-caption an empty prompt", hint="pass a non-empty prompt")
    caller = _caller(backend, templates, model_cfg, limiter, usage)
    return await caller.ask(templates["recaption"].render(text=text.strip()), (), step="recaption")


def recaption_provenance(
    backend: Backend, templates: TemplateSet, model: str | None = None
) -> dict[str, Any]:
    """What produced a re-caption: the ``recaption`` template's id@version, the preset, the
    backend and the model (``model`` or the backend's), and the diffcap version."""
    return {
        "template": templates["recaption"].ref,
        "prompt_preset": getattr(templates, "preset", None),
        # A wrapper (the request cache) names the backend it wraps as ``backend_name``.
        "backend": getattr(backend, "backend_name", None)
        or getattr(backend, "name", type(backend).__name__),
        "model": model or getattr(backend, "model", "") or "",
        "diffcap_version": __version__,
    }
