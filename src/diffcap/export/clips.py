"""Implicit clip captions: windows of consecutive keyframes summarised by clip summary.

The paper made ~400K extra clip captions from 40K videos this way, from the stored
differential captions alone (no frames re-processed). Windows are ``window`` keyframes long,
starting every ``stride`` keyframes, plus one final window ending at the last keyframe so the
tail is covered; a video with fewer keyframes than ``window`` gets one window over all of them.
Each video is one row through the pipeline's stage contract (:class:`ClipStage`, a model
stage) and executor, so videos are summarised concurrently, failures follow the run's
taxonomy, and a dead endpoint stops the export (nothing written) instead of skipping
videos. When the input is a run directory, requests go through the run's request cache
(``RUN_DIR/run.sqlite``, or the PostgreSQL the run is bound to), so exporting again never
pays twice.

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

from diffcap.captioning.text import summarize_clip
from diffcap.config import CaptionConfig, EngineConfig, ModelConfig, RunConfig
from diffcap.engine.control import RunControl
from diffcap.engine.job import Job
from diffcap.engine.rows import VideoRow
from diffcap.errors import ConfigError, RunStopped
from diffcap.export.base import ExportOptions, ExportResult
from diffcap.export.records import RecordSource
from diffcap.fsutil import atomic_open
from diffcap.models import get_backend
from diffcap.prompts import load_templates
from diffcap.stages.model import ModelStage
from diffcap.store import RunStore
from diffcap.store.cache import SQLITE
from diffcap.store.rundir import RunDir
from diffcap.timeline import Usage, VideoRecord

logger = logging.getLogger(__name__)

__all__ = ["ClipStage", "clip_windows", "write_clips"]


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


class ClipStage(ModelStage):
    """Clip summaries of one record's windows of stored differential captions (no frame is
    decoded); a model stage like captioning, so it runs under the same executors, behind the
    run's request cache when there is one."""

    name = "clips"

    def __init__(
        self, cfg: RunConfig, run_dir: str | Path, window: int, stride: int, cached: bool
    ) -> None:
        super().__init__(cfg, run_dir)
        self.window, self.stride, self.cached = window, stride, cached

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.update(window=self.window, stride=self.stride, cached=self.cached)
        return state

    @property
    def uses_cache(self) -> bool:
        return self.cached

    def setup(self, checked: Any = None) -> None:
        if self.cached:
            super().setup(checked)
            return

        self.backend = get_backend(self.cfg.model.backend, self.cfg.model)
        c = self.cfg.caption
        self.templates = load_templates(c.prompt_preset, overrides=c.templates or None)
        self._limiters = {}

    async def aclose(self) -> None:
        if not self.cached:
            await self.backend.aclose()
            return
        await super().aclose()

    async def aprocess_row(self, row: VideoRow) -> VideoRow:
        try:
            rec = VideoRecord.from_json(row.record or {})
            clips = await _video_clips(rec, self, Usage())
        except Exception as exc:
            return row.fail(self.name, exc)
        row.record = {"video_id": rec.video_id, "clips": clips}
        return row


async def _video_clips(rec: VideoRecord, stage: ClipStage, usage: Usage) -> list[dict[str, Any]]:
    kfs = rec.keyframes
    spans = clip_windows(len(kfs), stage.window, stage.stride)

    async def one(first: int, last: int) -> dict[str, Any]:
        start, end = kfs[first].time, kfs[last].time
        cap = await summarize_clip(
            rec,
            start,
            end,
            stage.backend,
            stage.templates,
            model_cfg=stage.cfg.model,
            limiter=stage.limiter,
            usage=usage,
            budget=await stage.budget(images=False),
        )
        return {
            "video_id": rec.video_id,
            "start": round(start, 6),
            "end": round(end, 6),
            "keyframes": [kfs[first].idx, kfs[last].idx],
            "caption": cap.content,
        }

    return list(await asyncio.gather(*(one(a, b) for a, b in spans)))


def _rows(source: RecordSource, result: ExportResult) -> list[VideoRow]:
    rows = []
    for rec in source:
        result.records += 1
        if not rec.differential:
            result.skip("without differential captions")
            continue
        rows.append(VideoRow(video_id=rec.video_id, source=rec.video_path, record=rec.to_json()))
    return rows


def write_clips(source: RecordSource, out: Path, opts: ExportOptions) -> ExportResult:
    """Clip captions of every record, through the pipeline's executor and stage contract;
    one video's failure never stops the export, a dead endpoint stops it (nothing written)."""
    result = ExportResult("clips", out)
    cached = source.run_dir is not None and RunDir(source.run_dir).has_store()
    cfg = RunConfig(
        model=opts.model or ModelConfig(),
        caption=CaptionConfig(prompt_preset=opts.prompt_preset, templates=dict(opts.templates)),
        engine=EngineConfig(cache_url=_bound_cache(source.run_dir) if cached else None),
    )
    work_dir = source.run_dir or out.parent
    stage = ClipStage(cfg, work_dir, opts.window, opts.stride, cached)
    # No store: the rows come from the records, the clips are written from the rows (a
    # run's request cache, when there is one, is the stage's own).
    job = Job([stage], cfg, run_dir=work_dir, keep_rows=True)
    job.check()  # a closed port fails here, before the records are read
    job.rows = rows = _rows(source, result)
    ended = job.run(progress=opts.progress)
    done = {row.video_id: row for row in ended.ended}
    _stop_if_deferred(ended.control, [done[r.video_id] for r in rows if r.video_id in done], rows)
    with atomic_open(out) as fh:
        for row in (done[r.video_id] for r in rows):
            if row.status == "failed":
                logger.warning("%s: no clip captions: %s", row.video_id, row.error)
                result.skip("failed")
                continue
            for clip in (row.record or {}).get("clips", []):
                fh.write(json.dumps(clip, ensure_ascii=False) + "\n")
                result.items += 1
    return result


def _bound_cache(run_dir: Path | None) -> str | None:
    """The PostgreSQL cache a run dir is bound to (its location without password: libpq
    takes the password from PGPASSWORD or ~/.pgpass), or None for its SQLite file."""

    store = RunStore.open_readonly(RunDir(str(run_dir)))
    try:
        bound = store.get_meta("request_cache")
    finally:
        store.close()
    return None if bound in (None, SQLITE) else str(bound)


def _stop_if_deferred(control: RunControl, ended: list[VideoRow], rows: list[VideoRow]) -> None:
    """A fault of the world (endpoint down) or a missing setting: nothing is written, a
    rerun of the export resumes from the request cache."""
    deferred = [r for r in ended if r.status == "deferred"]
    if not deferred and len(ended) == len(rows):
        return
    first = deferred[0] if deferred else None
    why = f"{first.video_id}: {first.error}" if first else "the export was stopped"
    raise RunStopped(
        control.stop_reason() or (first.reason if first else "faults") or "faults",
        f"clip export stopped, {len(rows) - len(ended) + len(deferred)} video(s) not done ({why})",
        hint="fix the model endpoint and run the export again; finished requests are cached",
    )
