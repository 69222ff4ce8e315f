"""Captions to score or to answer from: a diffcap run directory or a records JSONL, matched to
benchmark items by one rule.

**Matching rule.** A record is known by its ``video_id``, the file name of its ``video_path``
and that name's stem, all compared without case. A benchmark item is known by its keys: its
video id or file (``video`` of MVBench/TempCompass/VDC, ``videoID``/``video_id`` of Video-MME,
``idx`` and the ``video_file`` stem of DREAM-1K). The item takes the caption of the first
key (in that order) that names a record; an item no record matches is reported as
``missing`` in scores.json and not scored. So ``diffcap run DREAM-1K/videos/`` (files
``1.mp4``, ``2.mp4``... get ids ``1``, ``2``) matches DREAM-1K's ``idx`` directly.

The caption is the record's summary (``idx`` ``"-1"``), else its differential captions in
order, joined by blank lines.

    captions = CaptionTable.load(Path("runs/dream"))
    captions.find(["17", "video_017"])                  # "A man..." or None
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from diffcap.timeline import VideoRecord

log = logging.getLogger(__name__)

__all__ = ["CaptionTable", "caption_of", "caption_videos"]


def caption_of(rec: VideoRecord) -> str:
    summary = rec.summary
    if summary is not None and summary.content.strip():
        return summary.content.strip()
    return "\n\n".join(c.content.strip() for c in rec.differential if c.content.strip())


class CaptionTable:
    """Captions by every key of their record (lower-case)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.by_key: dict[str, str] = {}
        self.provenance: dict[str, Any] = {}

    @classmethod
    def load(cls, path: Path) -> CaptionTable:
        from diffcap.export.records import open_records  # lazy: start-up

        table = cls(str(path))
        for rec in open_records(path):
            text = caption_of(rec)
            if not text:
                continue
            if not table.provenance:
                table.provenance = dict(rec.provenance)
            name = Path(rec.video_path).name if rec.video_path else ""
            for key in (rec.video_id, name, Path(name).stem):
                if key:
                    table.by_key.setdefault(key.lower(), text)
        return table

    def find(self, keys: Iterable[str]) -> str | None:
        for key in keys:
            k = str(key).replace("\\", "/").rsplit("/", 1)[-1].lower()
            for cand in (k, Path(k).stem):
                if cand in self.by_key:
                    return self.by_key[cand]
        return None

    def __len__(self) -> int:
        return len(self.by_key)


def caption_videos(paths: list[Path], run_dir: Path, cfg: Any, *, progress: bool) -> Any:
    """Caption ``paths`` with a ``diffcap run`` in ``run_dir`` (resumable like any run);
    returns the run's report."""
    from diffcap.pipeline.runner import run_dataset  # lazy: start-up

    log.info("captioning %d videos with a diffcap run in %s", len(paths), run_dir)
    return run_dataset([str(p) for p in paths], run_dir, cfg, command="run", progress=progress)
