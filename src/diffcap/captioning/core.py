"""Caption one video's keyframes into a :class:`~diffcap.timeline.VideoRecord`.

    kset = extract_keyframes("clip.mp4", KeyframeConfig(), out_dir=Path("kf"), video_id="clip")
    record = await caption_keyframes(kset, backend, CaptionConfig(), ModelConfig(),
                                     load_templates("diffcap"), SummaryConfig(),
                                     records_dir=Path("."))
    record.to_json()["captions"][-1]["idx"]      # "-1": the whole-video summary

The record is a superset of ShareGPT4Video's 40K schema: ``captions`` holds the differential
captions ``"0"``, ``"1"``, ... (slide mode) and, last, the summary with idx ``"-1"``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diffcap import __version__
from diffcap.captioning.calls import Caller, KeyframeImages, Span, generation_options
from diffcap.captioning.camera_facts import camera_summary, facts_used
from diffcap.captioning.fast import caption_fast
from diffcap.captioning.segments import (
    caption_segments,
    plan_segments,
    visual_breaks,
    wants_segments,
)
from diffcap.captioning.slide import Chain, resolve_pair_layout
from diffcap.captioning.tree import summarize_tree
from diffcap.config import CaptionConfig, ModelConfig, SummaryConfig
from diffcap.errors import DiffcapError
from diffcap.keyframes.record import build_record
from diffcap.models.base import Backend
from diffcap.timeline import Caption, Keyframe, Usage, VideoRecord

if TYPE_CHECKING:
    from diffcap.keyframes.kset import KeyframeSet
    from diffcap.prompts.presets import TemplateSet

log = logging.getLogger(__name__)


class NoKeyframes(DiffcapError):
    reason = "no_keyframes"


def provenance(
    backend: Backend, templates: TemplateSet, model: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What made a record: backend, model, template ids@versions, diffcap version, time."""
    prov: dict[str, Any] = {
        # A wrapper (the request cache) names the backend it wraps as ``backend_name``.
        "backend": getattr(backend, "backend_name", None)
        or getattr(backend, "name", type(backend).__name__),
        "model": model,
        "templates": templates.provenance() if hasattr(templates, "provenance") else {},
        "prompt_preset": getattr(templates, "preset", None),
        "diffcap_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    prov.update(extra or {})
    return prov


def _caller(
    backend: Backend,
    model_cfg: ModelConfig,
    templates: TemplateSet,
    limiter: asyncio.Semaphore | None,
    video_id: str,
    usage: Usage | None,
) -> Caller:
    return Caller(
        backend,
        options=generation_options(model_cfg, templates),
        limiter=limiter,
        system=getattr(templates, "system", None),
        usage=usage if usage is not None else Usage(),
        tags=(("video_id", video_id),),
    )


async def caption_keyframes(
    kset: KeyframeSet,
    backend: Backend,
    cfg: CaptionConfig,
    model_cfg: ModelConfig,
    templates: TemplateSet,
    summary: SummaryConfig,
    *,
    limiter: asyncio.Semaphore | None = None,
    records_dir: Path | None = None,
    span: tuple[float, float] | None = None,
    usage: Usage | None = None,
    budget: Any = None,
) -> VideoRecord:
    """Caption a :class:`~diffcap.keyframes.KeyframeSet` in ``cfg.mode`` (slide or fast).

    ``limiter`` bounds requests in flight across every video sharing it. ``span`` is the
    (start, end) the summary covers (default: the keyframe set's extraction ``window``, else
    0 to the video's duration). ``usage`` (optional) accumulates tokens and cost as requests
    complete, so a caller can account for a video that fails part-way.
    """
    keyframes = list(kset.keyframes)
    if not keyframes:
        raise NoKeyframes(
            f"{kset.video_path}: no keyframes to caption",
            hint="check the keyframe settings (--start/--end, --interval)",
        )
    images = _images(kset, keyframes, model_cfg.image_max_side)
    caller = _caller(backend, model_cfg, templates, limiter, kset.video_id, usage)
    caller.budget = budget
    prov: dict[str, Any] = {"mode": cfg.mode, "options": dict(caller.options)}
    extra: dict[str, Any] = {}
    covered = _covered(kset, span)
    if cfg.mode == "fast":
        summary_caption, keep = await caption_fast(
            keyframes, images, caller, templates, cfg, span=covered
        )
        captions = [summary_caption]
        prov["fast_layout"] = cfg.fast_layout
        extra["fast_keyframes"] = [keyframes[i].idx for i in keep]
    else:
        video = _Video(keyframes, images, caller, templates, covered)
        captions = await _slide_with_summary(video, backend, cfg, summary, prov, extra)
    prov = provenance(backend, templates, caller.model_name, prov)
    return build_record(kset, captions, cfg.mode, caller.usage, prov, records_dir, extra)


def _covered(kset: KeyframeSet, span: tuple[float, float] | None) -> Span:
    """What the summary covers: ``span``, else the extraction window, else the whole video.
    Prompts are told the window's length, not the file's; times stay seconds from the start
    of the file (keyframe times use that clock)."""
    duration = float(kset.info.duration)
    window = span or getattr(kset, "window", None) or (0.0, duration)
    return Span(float(window[0]), float(window[1]), duration)


def _images(kset: KeyframeSet, keyframes: list[Keyframe], max_side: int) -> KeyframeImages:
    """The keyframe images: files beside keyframes.json, else arrays held in memory."""
    json_path = getattr(kset, "json_path", None)
    return KeyframeImages(
        Path(json_path).parent if json_path else None,
        keyframes,
        max_side,
        arrays=None if json_path else getattr(kset, "images", None),
    )


@dataclass
class _Video:
    """One video's captioning context."""

    keyframes: list[Keyframe]
    images: KeyframeImages
    caller: Caller
    templates: TemplateSet
    span: Span


async def _slide_with_summary(
    v: _Video,
    backend: Backend,
    cfg: CaptionConfig,
    summary: SummaryConfig,
    prov: dict[str, Any],
    extra: dict[str, Any],
) -> list[Caption]:
    layout = resolve_pair_layout(cfg, backend, v.templates)
    prov["pair_layout"] = layout
    facts = cfg.camera_facts and facts_used(v.keyframes, v.templates)
    if facts:
        prov["camera_facts"] = True  # (exports render training prompts the same way)
    chain = Chain(v.keyframes, v.images, v.caller, v.templates, layout, v.span, bool(facts))
    n = len(v.keyframes)
    breaks: list[float] | None = None

    async def visual() -> list[float]:
        nonlocal breaks
        if breaks is None:
            breaks = await asyncio.to_thread(visual_breaks, v.images)
        return breaks

    if wants_segments(cfg, n, v.span.duration):
        ranges = plan_segments(await visual(), n, cfg.segment_keyframes)
        captions, extra["segments"] = await caption_segments(chain, ranges)
        prov["chain"] = "segments"
    else:
        captions = await chain.run(0, n)
    if summary.enabled:
        final, tree = await summarize_tree(
            captions,
            v.caller,
            v.templates,
            span=v.span,
            model=summary.model,
            breaks=visual,
            variables={"camera": camera_summary(v.keyframes) if facts else ""},
        )
        captions.append(final)
        if tree is not None:
            extra["summary_tree"] = tree
            prov["tree_templates"] = v.templates.tree_provenance()
        if summary.model:
            prov["summary_model"] = summary.model
    return captions
