"""The stage contract: all an executor sees of a stage.

A stage holds only picklable config (``cfg``, ``run_dir``); ``setup()`` builds heavy things
once per worker; one async ``aprocess(batch)`` maps rows to rows (same order), recording
failures in the rows instead of raising; ``process(batch)`` is its sync adapter. ``resources``
says what one worker needs, and executors size and place workers from it:

- ``Resources(cpus=1)``: CPU-bound, one row at a time per worker (the local executor runs it
  in a process pool; Ray gives each actor one CPU);
- ``Resources(cpus=0, concurrency=8)``: waits on I/O (HTTP, downloads), many rows at once in
  one worker's event loop;
- ``Resources(gpus=1)``: an in-process model on a GPU.

A :class:`BarrierStage` needs every row at once (semantic de-dup): executors never see it; the
pipeline runs it between the segments the executor runs.

    class Shout(Stage):
        name = "shout"
        def process_row(self, row):
            row.caption = (row.caption or "").upper()
            return row

Stages never import ray (``engine/ray_executor.py`` adapts them to ``map_batches``).
"""

from __future__ import annotations

import asyncio
from abc import ABC
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from diffcap.config import RunConfig
from diffcap.engine.rows import VideoRow


@dataclass(frozen=True)
class Resources:
    """What one worker of a stage needs."""

    cpus: float = 1.0
    gpus: float = 0.0
    #: Rows one worker works on at once (model stages: requests in flight).
    concurrency: int = 1
    #: Would use a GPU where a worker has one (an in-process model on ``device: auto``):
    #: the Ray executor gives it one per actor when the cluster has GPUs.
    wants_gpu: bool = False

    @property
    def cpu_bound(self) -> bool:
        """Computes on CPUs one row at a time (worth a process per worker); otherwise the
        stage waits on I/O or a device and shares one event loop."""
        return self.cpus >= 1 and self.gpus == 0 and self.concurrency == 1


class Stage(ABC):
    """Base class of the stages of a run. Subclasses implement ``process_row`` (sync,
    CPU work) or ``aprocess_row`` (async, I/O); both record failures in the row."""

    name: ClassVar[str]

    def __init__(self, cfg: RunConfig, run_dir: str | Path) -> None:
        self.cfg = cfg
        self.run_dir = str(run_dir)
        self._ready = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def resources(self) -> Resources:
        return Resources()

    def check(self) -> None:  # noqa: B027 - optional hook
        """Fail fast on the driver, before any video is touched, when the stage cannot
        work at all (a model that cannot be reached). Cheap: loads nothing heavy."""

    def setup(self) -> None:
        """Heavy setup (models, clients); idempotent, called once per worker."""
        self._ready = True

    def teardown(self) -> None:  # noqa: B027 - optional hook
        """Release what setup() built; idempotent."""

    async def aclose(self) -> None:
        """Async teardown, for executors that own an event loop (default: ``teardown``)."""
        self.teardown()

    def process_row(self, row: VideoRow) -> VideoRow:
        """Work on one active row (sync); the default runs ``aprocess_row``."""
        return self._run(self.aprocess_row(row))

    async def aprocess_row(self, row: VideoRow) -> VideoRow:
        """Work on one active row (async); the default runs ``process_row`` in a thread."""
        if type(self).process_row is Stage.process_row:
            raise NotImplementedError(f"{type(self).__name__} implements no process_row")
        return await asyncio.to_thread(self.process_row, row)

    async def aprocess(self, batch: list[VideoRow]) -> list[VideoRow]:
        """Rows in, rows out, same order; active rows concurrently (``resources.concurrency``
        at a time), the others pass through. A bug in one row defers that row only."""
        if not self._ready:
            await asyncio.to_thread(self.setup)
        limiter = asyncio.Semaphore(self.resources.concurrency)

        async def one(row: VideoRow) -> VideoRow:
            if not row.active:
                return row
            async with limiter:
                try:
                    return await self.aprocess_row(row)
                except Exception as exc:  # stages record video errors; this is a bug
                    return row.fail(self.name, exc)

        return list(await asyncio.gather(*(one(r) for r in batch)))

    def process(self, batch: list[VideoRow]) -> list[VideoRow]:
        """Sync adapter of :meth:`aprocess` (process pools, Ray actors)."""
        if not self._ready:
            self.setup()
        return self._run(self.aprocess(batch))

    def _run(self, coro: Any) -> Any:
        # One loop per stage instance for all batches: async clients (httpx) bind to the
        # loop they first ran on, so a fresh asyncio.run() per batch would break them.
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    def close_loop(self) -> None:
        """Run ``aclose`` on this stage's own loop (sync callers: pools, Ray actors)."""
        loop = self._loop or asyncio.new_event_loop()
        try:
            loop.run_until_complete(self.aclose())
        finally:
            loop.close()
            self._loop = None

    def __getstate__(self) -> dict[str, Any]:
        # Only config crosses process boundaries; workers call setup() themselves.
        return {"cfg": self.cfg, "run_dir": self.run_dir, "_ready": False, "_loop": None}


class BarrierStage(Stage):
    """A stage that needs every row at once; run by the pipeline on the driver."""

    def process_row(self, row: VideoRow) -> VideoRow:
        raise TypeError(f"{self.name} is a barrier stage: use process_all")

    def process_all(self, rows: list[VideoRow], store: Any) -> list[VideoRow]:
        """All rows of the run (active ones to decide on); returns them, same order."""
        raise NotImplementedError
