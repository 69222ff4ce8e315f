"""The de-dup barrier: greedy semantic de-dup over every candidate's short caption.

It needs every candidate at once, so executors never run it: the pipeline calls
``process_all`` between the stages before it (prepare, short_caption) and after it.
Candidates are visited in input order, done ones of earlier runs included, so a resumed run
takes the same decisions; the decisions are cached in the run store keyed by the candidates
and settings, so an unchanged rerun loads no embedding model.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from diffcap.engine.rows import VideoRow
from diffcap.engine.stage import BarrierStage, Resources

log = logging.getLogger(__name__)


class DedupStage(BarrierStage):
    name = "dedup"

    @property
    def resources(self) -> Resources:
        return Resources(cpus=1)

    def process_all(self, rows: list[VideoRow], store: Any) -> list[VideoRow]:
        candidates = [v for v in store.videos(["pending", "done"]) if v["caption"]]
        active = {r.video_id: r for r in rows if r.active and r.caption}
        # The store has the captions committed so far; rows of this run may be newer.
        texts = {v["video_id"]: v["caption"] for v in candidates}
        texts.update({vid: r.caption for vid, r in active.items()})
        order = [v["video_id"] for v in store.videos(["pending", "done"])]
        ids = [vid for vid in order if vid in texts]
        if not ids:
            return rows
        dropped = self._decisions(store, ids, [texts[i] for i in ids])
        threshold = self.cfg.filter.dedup_threshold
        for vid, (dup_of, sim) in dropped.items():
            row = active.get(vid)
            if row is None:
                if (store.video(vid) or {}).get("status") == "done":
                    log.warning("%s is done but looks like a duplicate of %s; kept", vid, dup_of)
                continue
            row.filter(
                self.name,
                "duplicate",
                f"short caption is {sim:.3f} similar to {dup_of}'s (threshold {threshold:g})",
                duplicate_of=dup_of,
                similarity=sim,
            )
        return rows

    def _decisions(
        self, store: Any, ids: list[str], texts: list[str]
    ) -> dict[str, tuple[str, float]]:
        """{dropped id: (kept id it duplicates, similarity)}, cached in the store."""
        from diffcap.stages.dedup import dedup_from_config  # lazy: start-up

        fc = self.cfg.filter
        key = hashlib.sha256(
            json.dumps([ids, texts, fc.dedup_model, fc.dedup_threshold, fc.dedup_index]).encode()
        ).hexdigest()
        saved = store.get_meta("dedup") or {}
        if saved.get("key") == key:  # same candidates and settings: same decisions
            return {k: (d, s) for k, (d, s) in saved["dropped"].items()}
        dropped = {
            d.id: (d.duplicate_of, d.similarity)
            for d in dedup_from_config(ids, texts, fc).duplicates()
        }
        store.set_meta("dedup", {"key": key, "dropped": {k: list(v) for k, v in dropped.items()}})
        return dropped
