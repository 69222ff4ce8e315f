"""One pipeline under every command: an ordered list of stages, run by an executor.

A command is a preset stage list (:func:`diffcap.stages.registry.stage_names`), not a
program. The executor (local or Ray) comes from ``engine.engine``, never from the command.
Barrier stages (de-dup) split the list into segments: the executor runs each segment over
the rows, the pipeline runs the barrier on every row in between. A row that passes every
stage is done.

    pipeline = Pipeline(build_stages(stage_names("run", cfg), cfg, run_dir))
    pipeline.run(make_executor(cfg), store, control, on_row=commit)
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

from diffcap.config import RunConfig
from diffcap.engine.control import RunControl
from diffcap.engine.executor import Executor
from diffcap.engine.rows import VideoRow
from diffcap.engine.stage import BarrierStage, Stage

log = logging.getLogger(__name__)

#: ``engine.engine`` -> the executor class, as ``module:Class`` (imported on first use: the
#: Ray executor needs the ``ray`` extra). A new executor is one module and one line here.
EXECUTORS: dict[str, str] = {
    "local": "diffcap.engine.local:LocalExecutor",
    "ray": "diffcap.engine.ray_executor:RayExecutor",
}


def make_executor(cfg: RunConfig, *, progress: bool = True) -> Executor:
    """The executor of ``engine.engine``."""
    module, _, cls = EXECUTORS[cfg.engine.engine].partition(":")
    executor: type[Executor] = getattr(importlib.import_module(module), cls)
    return executor(cfg, progress=progress)


class Pipeline:
    def __init__(self, stages: list[Stage]) -> None:
        self.stages = list(stages)
        self.names = [stage.name for stage in self.stages]
        #: Why the run stopped before its last stage ("dedup_waits"), if it did.
        self.waiting: str | None = None

    def check(self) -> None:
        """Fail fast, before any video is touched (a model that cannot be reached)."""
        for stage in self.stages:
            stage.preflight()

    def segments(self) -> list[tuple[list[Stage], BarrierStage | None]]:
        """The stage list cut at barriers: [(stages before, barrier or None), ...]."""
        out: list[tuple[list[Stage], BarrierStage | None]] = []
        current: list[Stage] = []
        for stage in self.stages:
            if isinstance(stage, BarrierStage):
                out.append((current, stage))
                current = []
            else:
                current.append(stage)
        out.append((current, None))
        return out

    def run(
        self,
        executor: Executor,
        store: Any,
        control: RunControl,
        on_row: Callable[[VideoRow], Any],
        *,
        rows: Iterable[VideoRow] | None = None,
    ) -> None:
        """Run every pending video of ``store`` (or the given ``rows``); ``on_row`` gets each
        row whose chain ended (done, failed, filtered, deferred) and each row between
        segments (still pending).

        Without a barrier the pending videos stream from the store (never held whole); a
        barrier (de-dup) needs every candidate, so its segment's survivors are kept."""
        if rows is None:
            total = store.count(["pending"])
            rows = (VideoRow.new(v) for v in store.iter_videos(["pending"]))
        else:
            rows = list(rows)
            total = len(rows)
        if not total:
            return
        order: dict[str, int] = {}
        for stages, barrier in self.segments():
            if barrier is not None and not order:
                rows = list(rows)
                order = {r.video_id: i for i, r in enumerate(rows)}
            seg = _Segment(on_row, last=barrier is None)
            executor.run(rows, stages, seg, control, total=total)
            if barrier is None or control.stop_reason() is not None:
                return
            if seg.deferred or seg.ended < total:
                # The barrier needs every candidate; some are missing (deferred or never
                # started): it waits for the next run, and so does what follows it.
                self.waiting = f"{barrier.name}_waits"
                return
            seg.survivors.sort(key=lambda r: order[r.video_id])
            rows = self._barrier(barrier, seg.survivors, store, on_row)
            total = len(rows)

    @staticmethod
    def _barrier(
        barrier: BarrierStage,
        rows: list[VideoRow],
        store: Any,
        on_row: Callable[[VideoRow], Any],
    ) -> list[VideoRow]:
        barrier.setup(barrier.checked)
        try:
            out = barrier.process_all(rows, store)
        finally:
            asyncio.run(barrier.aclose())
        for row in out:
            if not row.active:
                on_row(row)
        return [r for r in out if r.active]


class _Segment:
    """``on_row`` of one segment: marks rows that passed the last stage done, keeps the
    survivors for the next segment and counts what ended."""

    def __init__(self, on_row: Callable[[VideoRow], Any], *, last: bool) -> None:
        self.on_row, self.last = on_row, last
        self.survivors: list[VideoRow] = []
        self.ended = self.deferred = 0

    def __call__(self, row: VideoRow) -> None:
        if row.active and self.last:
            row.status = "done"
        self.ended += 1
        self.deferred += row.status == "deferred"
        self.on_row(row)
        if row.active and not self.last:  # the last segment's rows are done: not kept
            self.survivors.append(row)
