"""The local engine: CPU stages in worker pools feeding async model stages.

Each video's chain runs in order (prepare -> keyframes -> caption); many videos are in
flight at once: keyframe extraction in a process pool of ``engine.workers`` (threads when
``workers == 1``), model calls async with at most ``model.concurrency`` requests in flight.

    run_stages_local(rows, stages, cfg, on_row=store.commit_row)
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import BrokenExecutor, Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from tqdm.auto import tqdm

from diffcap.config import RunConfig
from diffcap.pipeline.rows import Row, fail_row, is_pending
from diffcap.pipeline.stages import Stage

log = logging.getLogger(__name__)

#: Stages set up once per worker process (keyed by stage name).
_WORKER_STAGES: dict[str, Stage] = {}


def _watch_parent(parent_pid: int) -> None:
    """Pool initializer: exit when the runner dies (SIGKILL leaves spawn workers blocked on
    their task queue forever otherwise)."""

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(0)

    threading.Thread(target=watch, name="diffcap-parent-watch", daemon=True).start()


def _worker_process_row(stage: Stage, row: Row) -> Row:
    """Runs in a pool worker: set the stage up once per process, then work on one row."""
    token = f"{stage.name}|{stage.run_dir}|{stage.cfg.model_dump_json()}"
    ready = _WORKER_STAGES.get(token)
    if ready is None:
        stage.setup()
        ready = _WORKER_STAGES[token] = stage
    return ready.process_row(row)


class LocalEngine:
    """Runs rows through ``stages``; ``on_row`` gets every row when its chain ends."""

    def __init__(self, stages: Sequence[Stage], cfg: RunConfig, *, progress: bool = True):
        self.stages = list(stages)
        self.cfg = cfg
        self.progress = progress
        self.stopped_by_budget = False

    def run(self, rows: list[Row], on_row: Callable[[Row], Any]) -> None:
        asyncio.run(self._run(rows, on_row))

    def _executor(self, stage: Stage) -> Executor:
        workers = self.cfg.engine.workers
        if stage.name == "prepare":
            # Downloads and probes wait on I/O: threads are enough and start instantly.
            return ThreadPoolExecutor(max(4, workers), thread_name_prefix="diffcap-prepare")
        if workers == 1:
            return ThreadPoolExecutor(1, thread_name_prefix=f"diffcap-{stage.name}")
        # spawn, not fork: the parent holds an event loop, SQLite handles and threads.
        ctx = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_watch_parent, initargs=(os.getpid(),)
        )

    async def _run(self, rows: list[Row], on_row: Callable[[Row], Any]) -> None:
        executors: dict[str, Executor] = {}
        bars: dict[str, tqdm] = {}
        for i, stage in enumerate(self.stages):
            if stage.kind == "cpu":
                executors[stage.name] = self._executor(stage)
            else:
                await asyncio.to_thread(stage.setup)
            bars[stage.name] = tqdm(
                total=len(rows),
                desc=stage.name,
                unit="video",
                position=i,
                leave=True,
                disable=not self.progress,
                dynamic_ncols=True,
            )
        limiter = asyncio.Semaphore(self.cfg.model.concurrency)
        # Enough videos in flight to keep both the CPU pool and the request slots busy.
        slots = asyncio.Semaphore(self.cfg.model.concurrency + 2 * self.cfg.engine.workers)
        try:
            tasks = []
            for row in rows:
                await slots.acquire()
                if self._budget_hit():
                    slots.release()
                    break
                tasks.append(
                    asyncio.create_task(self._chain(row, executors, bars, limiter, slots, on_row))
                )
            await asyncio.gather(*tasks)
        finally:
            for bar in bars.values():
                bar.close()
            for ex in executors.values():
                ex.shutdown(wait=True, cancel_futures=True)
            for stage in self.stages:
                if stage.kind == "model":
                    await stage.aclose()  # type: ignore[attr-defined]

    def _budget_hit(self) -> bool:
        if self.stopped_by_budget:
            return True
        for stage in self.stages:
            backend = getattr(stage, "backend", None)
            if backend is not None and backend.budget_exhausted:
                self.stopped_by_budget = True
        return self.stopped_by_budget

    async def _in_pool(self, stage: Stage, row: Row, executors: dict[str, Executor]) -> Row:
        """Run a CPU stage in its pool. A worker that dies (a decoder crash, the OOM killer)
        breaks the whole pool and fails every task in it; each of those rows is then tried
        once more in a process of its own, so only the video that crashes fails."""
        loop = asyncio.get_running_loop()
        executor = executors[stage.name]
        try:
            return await loop.run_in_executor(executor, _worker_process_row, stage, row)
        except BrokenExecutor as exc:
            if executors[stage.name] is executor:  # the first task to notice rebuilds
                log.warning("%s worker pool broke (%s); starting a new one", stage.name, exc)
                executor.shutdown(wait=False, cancel_futures=True)
                executors[stage.name] = self._executor(stage)
        ctx = multiprocessing.get_context("spawn")
        alone = ProcessPoolExecutor(
            1, mp_context=ctx, initializer=_watch_parent, initargs=(os.getpid(),)
        )
        try:
            return await loop.run_in_executor(alone, _worker_process_row, stage, row)
        except BrokenExecutor as exc:
            row = fail_row(row, stage.name, exc)
            row.update(
                reason="worker_crashed", error=f"the worker process died on this video ({exc})"
            )
            return row
        finally:
            alone.shutdown(wait=False, cancel_futures=True)

    async def _chain(
        self,
        row: Row,
        executors: dict[str, Executor],
        bars: dict[str, tqdm],
        limiter: asyncio.Semaphore,
        slots: asyncio.Semaphore,
        on_row: Callable[[Row], Any],
    ) -> None:
        try:
            for stage in self.stages:
                if not is_pending(row):
                    break
                try:
                    if stage.kind == "cpu":
                        row = await self._in_pool(stage, row, executors)
                    else:
                        row = await stage.aprocess_row(row, limiter)  # type: ignore[attr-defined]
                except Exception as exc:  # stages record video errors; this is a bug or a crash
                    row = fail_row(row, stage.name, exc)
                bars[stage.name].update(1)
            if row.get("reason") == "budget":
                self.stopped_by_budget = True
            on_row(row)
        finally:
            slots.release()


def run_stages_local(
    rows: list[Row],
    stages: Sequence[Stage],
    cfg: RunConfig,
    on_row: Callable[[Row], Any],
    *,
    progress: bool = True,
) -> bool:
    """Run ``rows`` through ``stages`` locally; returns True when stopped by the cost cap."""
    engine = LocalEngine(stages, cfg, progress=progress)
    engine.run(rows, on_row)
    return engine.stopped_by_budget
