"""The Ray poison-video limit: videos that did not come back from Ray Data, each run alone.

A Ray Data batch whose worker keeps dying is dropped (``engine.ray_max_retries``) and its
videos never come back; a stalled dataset is abandoned (``engine.ray_stall_s``). Which video
killed the worker is not known then (a batch can hold several), so each such suspect runs
again alone: every stage in order, in **one plain Ray task** (``max_retries=0``; never a
follow-up Ray Data dataset, which could hang after an actor crash), awaited at most
``engine.ray_stall_s``:

- it comes back: its outcome is committed as usual (an innocent batch-mate);
- its worker process dies (``os._exit``, a segfault, the OOM killer): one death is counted;
  after ``engine.max_worker_deaths`` the video is failed with reason ``worker_crashed``
  (``--retry-failed`` retries it), otherwise it runs alone again;
- it does not finish in time, or cannot start: it is cancelled and stays pending (a warning).

The count is durable (the run store's ``worker_deaths`` table): it is added *before* the task
is sent and cleared when the video gets an outcome, so a driver killed while a suspect runs
leaves the death counted for the next run. A store without that table (tests that run
rows without a run store) counts in memory.

    AloneRunner(cfg.engine, control.store).run(ray, lost, stages, on_row, control)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from diffcap.config import EngineConfig
from diffcap.engine.control import RunControl
from diffcap.engine.ray_actor import StageActor
from diffcap.engine.rows import VideoRow
from diffcap.engine.stage import Stage

logger = logging.getLogger(__name__)

__all__ = ["AloneRunner", "run_stages_alone"]


def run_stages_alone(stages: Sequence[Stage], row_json: str) -> str:
    """Every stage on one row in this process, as the Ray Data actors run them (the body of
    the plain Ray task); returns the row as JSON."""
    for stage in stages:
        actor = StageActor(stage)
        try:
            row_json = str(actor({"row": np.array([row_json], dtype=object)})["row"][0])
        finally:
            actor.worker.close()
    return row_json


class _Deaths:
    """Worker deaths per video: in the run store when it keeps them, else in memory."""

    def __init__(self, store: Any) -> None:
        self.store = store if hasattr(store, "add_worker_death") else None
        self.memory: dict[str, int] = {}

    def add(self, video_id: str) -> int:
        if self.store is not None:
            return int(self.store.add_worker_death(video_id))
        self.memory[video_id] = self.memory.get(video_id, 0) + 1
        return self.memory[video_id]

    def undo(self, video_id: str) -> None:
        if self.store is not None:
            self.store.undo_worker_death(video_id)
        else:
            self.memory[video_id] -= 1

    def clear(self, video_id: str) -> None:
        if self.store is not None:
            self.store.clear_worker_deaths(video_id)
        self.memory.pop(video_id, None)


class AloneRunner:
    """Runs suspects one at a time on plain Ray tasks (see the module docstring)."""

    def __init__(self, engine: EngineConfig, store: Any) -> None:
        self.engine = engine
        self.deaths = _Deaths(store)

    def run(
        self,
        ray: Any,
        lost: Sequence[VideoRow],
        stages: Sequence[Stage],
        on_row: Callable[[VideoRow], Any],
        control: RunControl,
    ) -> None:
        logger.warning(
            "%d video(s) did not come back from Ray (a worker died or the dataset stalled); "
            "trying each alone",
            len(lost),
        )
        cpus = max((s.resources.cpus for s in stages), default=0.0)
        gpus = max((s.resources.gpus for s in stages), default=0.0)
        task = ray.remote(max_retries=0, num_cpus=cpus, num_gpus=gpus or None)(run_stages_alone)
        for row in lost:
            if control.stop_reason() is not None:
                return
            self._one(ray, task, row, stages, on_row)

    def _one(
        self,
        ray: Any,
        task: Any,
        row: VideoRow,
        stages: Sequence[Stage],
        on_row: Callable[[VideoRow], Any],
    ) -> None:
        limit = self.engine.max_worker_deaths
        while True:
            deaths = self.deaths.add(row.video_id)  # before it is sent: a lost driver counts it
            ref = task.remote(list(stages), json.dumps(row.to_json()))
            ready, _ = ray.wait([ref], timeout=self.engine.ray_stall_s)
            if not ready:
                ray.cancel(ref, force=True)
                self.deaths.undo(row.video_id)
                logger.warning(
                    "%s did not finish alone on Ray in %g s (engine.ray_stall_s); it stays "
                    "pending: rerun to retry it",
                    row.video_id,
                    self.engine.ray_stall_s,
                )
                return
            try:
                out = VideoRow.from_json(json.loads(ray.get(ref)))
            except ray.exceptions.RayTaskError as exc:  # setup raised: not a worker death
                self.deaths.undo(row.video_id)
                on_row(row.fail(stages[0].name, exc.as_instanceof_cause()))
                return
            except ray.exceptions.RayError as exc:  # the worker process died
                if deaths < limit:
                    logger.warning(
                        "%s killed its Ray worker (%d of %d)", row.video_id, deaths, limit
                    )
                    continue
                on_row(self._poisoned(row, deaths, exc))
            else:
                on_row(out)
            self.deaths.clear(row.video_id)
            return

    @staticmethod
    def _poisoned(row: VideoRow, deaths: int, exc: BaseException) -> VideoRow:
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        row.status, row.stage, row.reason = "failed", "ray", "worker_crashed"
        row.error = (
            f"killed {deaths} workers ({type(exc).__name__}: {cause}); failed so a rerun "
            "does not retry it: --retry-failed retries it"
        )
        logger.warning("%s: %s", row.video_id, row.error)
        return row
