"""The local executor: every video's chain of stages in order, many videos in flight.

Placement comes from each stage's declared :class:`~diffcap.engine.stage.Resources` only:
``cpu_bound`` stages run in a process pool of ``engine.workers`` (a thread when
``workers == 1`` or when the run has one video: spawning a worker, which imports diffcap
again, costs more than that video's crash isolation is worth); the others (I/O, models)
share this process's event loop, each bounded by its own ``resources.concurrency``. Videos
in flight are bounded too (twice the widest stage concurrency plus two per worker), and no
new video starts once the run control says stop.

    LocalExecutor(cfg).run(rows, stages, on_row=commit, control=control)
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence, Sized
from concurrent.futures import BrokenExecutor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from diffcap.engine.control import RunControl
from diffcap.engine.executor import Executor
from diffcap.engine.rows import VideoRow
from diffcap.engine.stage import Stage, StageWorker

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

log = logging.getLogger(__name__)

#: Stages set up once per worker process (keyed by stage name, run dir and config).
_WORKER_STAGES: dict[str, StageWorker] = {}


def _watch_parent(parent_pid: int) -> None:
    """Pool initializer: exit when the runner dies (SIGKILL leaves spawn workers blocked on
    their task queue forever otherwise). Ctrl-C is the runner's to handle: a worker that
    also got SIGINT would print its own traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGTERM to the whole group (systemd): the runner finishes gracefully and ends the pool
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(0)

    threading.Thread(target=watch, name="diffcap-parent-watch", daemon=True).start()


def _worker_process(stage: Stage, row: VideoRow) -> VideoRow:
    """Runs in a pool worker: set the stage up once per process, then one row."""
    token = f"{stage.name}|{stage.run_dir}|{stage.cfg.model_dump_json()}"
    worker = _WORKER_STAGES.get(token)
    if worker is None:
        worker = StageWorker(stage)
        worker.setup()
        _WORKER_STAGES[token] = worker
    return worker.process([row])[0]


def _spawn_pool(workers: int) -> ProcessPoolExecutor:
    # imported here: multiprocessing is not needed by a run that starts no process
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: the parent holds an event loop, SQLite handles and threads.
    ctx = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_watch_parent, initargs=(os.getpid(),)
    )


class LocalExecutor(Executor):
    """Runs rows through stages on this machine."""

    name = "local"

    def run(
        self,
        rows: Iterable[VideoRow],
        stages: Sequence[Stage],
        on_row: Callable[[VideoRow], Any],
        control: RunControl,
        *,
        total: int | None = None,
    ) -> None:
        if isinstance(rows, Sized):
            total = len(rows) if total is None else total
            if not rows:
                return
        if stages:
            asyncio.run(_Run(self, list(stages), on_row, control).go(rows, total))

    def pool(self, stage: Stage, total: int | None = None) -> cf.Executor:
        """A CPU stage's pool: ``engine.workers`` spawned processes (no more than ``total``
        videos need), or one thread for one worker or one video."""
        workers = self.cfg.engine.workers
        if total is not None:
            workers = max(1, min(workers, total))
        if workers == 1:
            return ThreadPoolExecutor(1, thread_name_prefix=f"diffcap-{stage.name}")
        return _spawn_pool(workers)


class _Run:
    """One executor run: pools, bars and the per-video chains."""

    def __init__(
        self,
        ex: LocalExecutor,
        stages: list[Stage],
        on_row: Callable[[VideoRow], Any],
        control: RunControl,
    ) -> None:
        self.ex, self.stages, self.on_row, self.control = ex, stages, on_row, control
        self.pools: dict[str, cf.Executor] = {}
        self.workers: dict[str, StageWorker] = {}  # stages on this loop (not in a pool)
        self.total: int | None = None
        self.bars: dict[str, tqdm[Any]] = {}

    async def go(self, rows: Iterable[VideoRow], total: int | None) -> None:
        try:
            await self._start(total)
            # Twice the widest stage's concurrency plus two per worker: a model stage's
            # requests stay busy while the next videos are decoded (each video's requests
            # are sequential in slide mode), and keyframes on disk wait only briefly.
            widest = max(s.resources.concurrency for s in self.stages)
            slots = asyncio.Semaphore(2 * widest + 2 * self.ex.cfg.engine.workers)
            live: set[asyncio.Task[None]] = set()  # only the chains in flight: memory is flat
            errors: list[BaseException] = []  # on_row's (disk full): stop starting videos

            def done(task: asyncio.Task[None]) -> None:
                live.discard(task)
                if not task.cancelled() and task.exception() is not None:
                    errors.append(task.exception())  # type: ignore[arg-type]

            for row in rows:
                await slots.acquire()
                if errors or self.control.stop_reason() is not None:
                    slots.release()
                    break
                task = asyncio.create_task(self._chain(row, slots))
                live.add(task)
                task.add_done_callback(done)
            await asyncio.gather(*live)
            if errors:
                raise errors[0]
        finally:
            await self._stop()

    async def _start(self, total: int | None) -> None:
        self.total = total
        for i, stage in enumerate(self.stages):
            if stage.resources.cpu_bound:
                self.pools[stage.name] = self.ex.pool(stage, total)
            else:
                worker = self.workers[stage.name] = StageWorker(stage)
                await asyncio.to_thread(worker.setup)
            self.bars[stage.name] = tqdm(
                total=total,
                desc=stage.name,
                unit="video",
                position=i,
                leave=True,
                disable=not self.ex.progress,
                dynamic_ncols=True,
            )

    async def _stop(self) -> None:
        for bar in self.bars.values():
            bar.close()
        for pool in self.pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
        for worker in self.workers.values():
            await worker.aclose()

    async def _chain(self, row: VideoRow, slots: asyncio.Semaphore) -> None:
        try:
            for stage in self.stages:
                if not row.active:
                    break
                try:
                    if stage.name in self.pools:
                        row = await self._in_pool(stage, row)
                    else:
                        row = (await self.workers[stage.name].aprocess([row]))[0]
                except Exception as exc:  # stages record video errors; this is a bug
                    row = row.fail(stage.name, exc)
                self.bars[stage.name].update(1)
            self.on_row(row)
        finally:
            slots.release()

    async def _in_pool(self, stage: Stage, row: VideoRow) -> VideoRow:
        """A CPU stage in its pool. A worker that dies (a decoder crash, the OOM killer)
        breaks the whole pool and fails every task in it; each of those rows is then tried
        once more in a process of its own, so only the video that crashes fails."""
        loop = asyncio.get_running_loop()
        pool = self.pools[stage.name]
        try:
            return await loop.run_in_executor(pool, _worker_process, stage, row)
        except BrokenExecutor as exc:
            if self.pools[stage.name] is pool:  # the first task to notice rebuilds
                log.warning("%s worker pool broke (%s); starting a new one", stage.name, exc)
                pool.shutdown(wait=False, cancel_futures=True)
                self.pools[stage.name] = self.ex.pool(stage, self.total)
        alone = _spawn_pool(1)
        try:
            return await loop.run_in_executor(alone, _worker_process, stage, row)
        except BrokenExecutor as exc:
            row.status, row.stage, row.reason = "failed", stage.name, "worker_crashed"
            row.error = f"the worker process died on this video ({exc})"
            return row
        finally:
            alone.shutdown(wait=False, cancel_futures=True)
