"""Implicit clip captions: windows of consecutive keyframes summarised by clip summary.

The paper made ~400K extra clip captions from 40K videos this way, from the stored
differential captions alone (no frames re-processed). Windows are ``window`` keyframes long,
starting every ``stride`` keyframes, plus one final window ending at the last keyframe so the
tail is covered; a video with fewer keyframes than ``window`` gets one window over all of them.
When the input is a run directory, requests go through the run's request cache
(``RUN_DIR/run.sqlite``), so exporting again never pays twice.

Output JSONL: ``{"video_id", "start", "end", "keyframes": [first_idx, last_idx], "caption"}``.

    diffcap export runs/demo --format clips --window 4 --stride 2 --out clips.jsonl \\
        --api-base http://127.0.0.1:8000/v1 --model my-model
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from diffcap.config import ModelConfig
from diffcap.errors import BudgetExceeded, ConfigError, DiffcapError
from diffcap.export.base import ExportOptions, ExportResult, progress_bar
from diffcap.export.records import RecordSource
from diffcap.fsutil import atomic_open
from diffcap.timeline import Usage, VideoRecord

logger = logging.getLogger(__name__)

__all__ = ["clip_windows", "write_clips"]


def clip_windows(n: int, window: int, stride: int) -> list[tuple[int, int]]:
    """``(first, last)`` keyframe positions (inclusive) of each window over ``n`` keyframes."""
    if window < 1 or stride < 1:
        raise ConfigError("--window and --stride must be at least 1")
    if n == 0:
        return []
    if n <= window:
        return [(0, n - 1)]
    spans = [(i, i + window - 1) for i in range(0, n - window + 1, stride)]
    if spans[-1][1] != n - 1:
        spans.append((n - window, n - 1))
    return spans


def _backend(source: RecordSource, model: ModelConfig) -> tuple[Any, Any]:
    """The model backend, behind the run's request cache when there is a run database."""
    from diffcap.models import get_backend

    inner = get_backend(model.backend, model)
    if source.run_dir is None or not (source.run_dir / "run.sqlite").is_file():
        return inner, None
    from diffcap.store import CachedBackend, RunStore

    store = RunStore.open(source.run_dir / "run.sqlite")
    return CachedBackend(inner, store), store


async def _video_clips(
    rec: VideoRecord,
    opts: ExportOptions,
    backend: Any,
    ts: Any,
    limiter: asyncio.Semaphore,
    usage: Usage,
) -> list[dict[str, Any]]:
    from diffcap.captioning.text import summarize_clip

    kfs = rec.keyframes
    spans = clip_windows(len(kfs), opts.window, opts.stride)

    async def one(first: int, last: int) -> dict[str, Any]:
        start, end = kfs[first].time, kfs[last].time
        cap = await summarize_clip(
            rec, start, end, backend, ts, model_cfg=opts.model, limiter=limiter, usage=usage
        )
        return {
            "video_id": rec.video_id,
            "start": round(start, 6),
            "end": round(end, 6),
            "keyframes": [kfs[first].idx, kfs[last].idx],
            "caption": cap.content,
        }

    return list(await asyncio.gather(*(one(a, b) for a, b in spans)))


async def _write(
    source: RecordSource, out: Path, opts: ExportOptions, result: ExportResult
) -> Usage:
    from diffcap.prompts import load_templates

    model = opts.model or ModelConfig()
    ts = load_templates(opts.prompt_preset, overrides=opts.templates or None)
    backend, store = _backend(source, model)
    usage = Usage()
    limiter = asyncio.Semaphore(model.concurrency)
    try:
        with atomic_open(out) as fh, progress_bar(opts, "clips") as bar:
            for rec in source:
                result.records += 1
                bar.update()
                if not rec.differential:
                    result.skip("without differential captions")
                    continue
                try:
                    rows = await _video_clips(rec, opts, backend, ts, limiter, usage)
                except BudgetExceeded:
                    raise
                except DiffcapError as exc:  # one video's failure never stops the export
                    logger.warning("%s: no clip captions: %s", rec.video_id, exc)
                    result.skip("failed")
                    continue
                for row in rows:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                result.items += len(rows)
    finally:
        await backend.aclose()
        if store is not None:
            store.close()
    return usage


def write_clips(source: RecordSource, out: Path, opts: ExportOptions) -> ExportResult:
    result = ExportResult("clips", out)
    usage = asyncio.run(_write(source, out, opts, result))
    result.extra["usage"] = usage.to_json()
    return result
