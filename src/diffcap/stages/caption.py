"""The model stages of a run: a short caption for de-dup, and captioning (DiffSW or fast)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from diffcap.captioning.core import caption_keyframes
from diffcap.engine.rows import VideoRow
from diffcap.keyframes import KeyframeSet
from diffcap.stages.keyframes import finish_record
from diffcap.stages.model import ModelStage
from diffcap.store.rundir import RunDir

if TYPE_CHECKING:
    from diffcap.keyframes.kset import KeyframeSet

__all__ = ["CaptionStage", "ShortCaptionStage", "covered"]


class ShortCaptionStage(ModelStage):
    """A one-sentence caption for de-dup (skipped when the manifest gave one)."""

    name = "short_caption"

    async def aprocess_row(self, row: VideoRow) -> VideoRow:
        from diffcap.stages.shortcap import short_caption  # lazy: start-up

        if row.caption:
            return row
        try:
            row.caption = await short_caption(
                row.path or row.source,
                self.backend,
                self.templates,
                self.cfg.model,
                duration=row.duration or 0.0,
                start=row.start or 0.0,
                limiter=self.limiter,
                video_id=row.video_id,
            )
        except Exception as exc:
            return row.fail(self.name, exc)
        return row


class CaptionStage(ModelStage):
    """DiffSW (slide) or fast captioning of the saved keyframes into a record."""

    name = "caption"

    async def aprocess_row(self, row: VideoRow) -> VideoRow:
        c = self.cfg
        try:
            if row.keyframes_json is None:
                raise RuntimeError("the caption stage needs the keyframes stage before it")
            kset = KeyframeSet.load(Path(row.keyframes_json))
            record = await caption_keyframes(
                kset,
                self.backend,
                c.caption,
                c.model,
                self.templates,
                c.summary,
                limiter=self.limiter,
                records_dir=RunDir(self.run_dir).records,
                span=covered(row, kset),
                budget=await self.budget(),
            )
        except Exception as exc:
            return row.fail(self.name, exc)
        row.record = finish_record(record, row)
        return row


def covered(row: VideoRow, kset: KeyframeSet) -> tuple[float, float] | None:
    """What the summary covers: the row's span, else the extraction window; never past the
    point where a damaged file stopped decoding."""
    span = row.span or kset.window
    until = kset.damaged.decoded_until if kset.damaged is not None else None
    if until is None:
        return span
    start, end = span if span is not None else (0.0, float(kset.info.duration))
    return start, max(start, min(end, float(until)))
