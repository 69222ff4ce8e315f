"""The stage contract: all an executor sees of a stage.

A stage holds only picklable config (``cfg``, ``run_dir``, its own parameters) and says what
kind of code it is by its base class, with exactly one method to implement:

- :class:`CpuStage`: ``process_row(row) -> row``, plain synchronous code (decoding,
  embedding; or blocking I/O, which runs in threads when ``resources`` say ``cpus=0``);
- :class:`IoStage`: ``async aprocess_row(row) -> row``, many rows at once on one event loop
  (HTTP to a model server);
- :class:`BarrierStage`: ``process_all(rows, store)``, every row at once (semantic de-dup):
  executors never see it; the pipeline runs it between the segments the executor runs.

Both record failures in the row instead of raising (an exception is a bug of that row).
``check()`` runs once on the driver before any video is touched (a model that cannot be
reached fails here) and returns what every worker's ``setup(checked)`` needs (for example
the run's id in a shared request cache); ``setup`` builds heavy things once per worker,
``aclose`` releases them. ``resources`` says what one worker needs, and executors size and
place workers from it:

- ``Resources(cpus=1)``: CPU-bound, one row at a time per worker (the local executor runs it
  in a process pool; Ray gives each actor one CPU);
- ``Resources(cpus=0, concurrency=8)``: waits on I/O (HTTP, downloads), many rows at once in
  one worker;
- ``Resources(gpus=1)``: an in-process model on a GPU.

    class Shout(CpuStage):
        name = "shout"
        def process_row(self, row):
            row.caption = (row.caption or "").upper()
            return row

Executors run a stage through :class:`StageWorker` (one worker's set-up copy, batches in,
sync or async); stages never import ray (``engine/ray_executor.py`` adapts them to
``map_batches``).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from diffcap.config import RunConfig
from diffcap.engine.rows import VideoRow

__all__ = ["BarrierStage", "CpuStage", "IoStage", "Resources", "Stage", "StageWorker"]


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
    """What every stage has; subclass :class:`CpuStage`, :class:`IoStage` or
    :class:`BarrierStage`."""

    name: ClassVar[str]
    #: Calls the run's models (``model``/``summary``): the run then records their identity.
    uses_models: ClassVar[bool] = False

    def __init__(self, cfg: RunConfig, run_dir: str | Path) -> None:
        self.cfg = cfg
        self.run_dir = str(run_dir)
        #: What ``check()`` returned on the driver, carried to every worker's ``setup``.
        self.checked: Any = None

    @property
    def resources(self) -> Resources:
        return Resources()

    def check(self) -> Any:
        """Fail fast on the driver, before any video is touched, when the stage cannot work
        at all (a model that cannot be reached); returns what ``setup`` needs on every
        worker (picklable), or None. Cheap: loads nothing heavy."""
        return None

    def preflight(self) -> None:
        """The engine's call on the driver: ``check()``, its result kept for the workers."""
        self.checked = self.check()

    def setup(self, checked: Any = None) -> None:  # noqa: B027 - optional hook
        """Heavy set-up (models, clients), once per worker, with what ``check()`` returned
        on the driver."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release what ``setup`` built."""

    def __getstate__(self) -> dict[str, Any]:
        # Only config crosses process boundaries; workers call setup() themselves.
        return {"cfg": self.cfg, "run_dir": self.run_dir, "checked": self.checked}


class CpuStage(Stage):
    """A stage of synchronous code: one row at a time per worker."""

    @abstractmethod
    def process_row(self, row: VideoRow) -> VideoRow:
        """Work on one active row; record failures in it."""


class IoStage(Stage):
    """A stage of asynchronous code: ``resources.concurrency`` rows at once per worker."""

    @abstractmethod
    async def aprocess_row(self, row: VideoRow) -> VideoRow:
        """Work on one active row; record failures in it."""


class BarrierStage(Stage):
    """A stage that needs every row at once; run by the pipeline on the driver."""

    @abstractmethod
    def process_all(self, rows: list[VideoRow], store: Any) -> list[VideoRow]:
        """All rows of the run (active ones to decide on); returns them, same order."""


class StageWorker:
    """One worker's copy of a stage, set up once: batches of rows in, the same rows out (in
    order), synchronously (pool processes, Ray actors: on the worker's own event loop) or
    asynchronously (the local executor's loop). Active rows run ``resources.concurrency``
    at a time, the others pass through; a bug in one row defers that row only."""

    def __init__(self, stage: Stage) -> None:
        if not isinstance(stage, CpuStage | IoStage):
            raise TypeError(f"{type(stage).__name__} is neither a CpuStage nor an IoStage")
        self.stage = stage
        self.ready = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def setup(self) -> None:
        if not self.ready:
            self.stage.setup(self.stage.checked)
            self.ready = True

    async def arow(self, row: VideoRow) -> VideoRow:
        stage = self.stage
        if isinstance(stage, IoStage):
            return await stage.aprocess_row(row)
        assert isinstance(stage, CpuStage)
        return await asyncio.to_thread(stage.process_row, row)

    async def aprocess(self, batch: list[VideoRow]) -> list[VideoRow]:
        if not self.ready:
            await asyncio.to_thread(self.setup)
        limiter = asyncio.Semaphore(self.stage.resources.concurrency)

        async def one(row: VideoRow) -> VideoRow:
            if not row.active:
                return row
            async with limiter:
                try:
                    return await self.arow(row)
                except Exception as exc:  # stages record video errors; this is a bug
                    return row.fail(self.stage.name, exc)

        return list(await asyncio.gather(*(one(r) for r in batch)))

    def process(self, batch: list[VideoRow]) -> list[VideoRow]:
        """:meth:`aprocess` for synchronous callers (pool processes, Ray actors)."""
        self.setup()
        out: list[VideoRow] = self._run(self.aprocess(batch))
        return out

    def _run(self, coro: Any) -> Any:
        # One loop per worker for all batches: async clients (httpx) bind to the loop they
        # first ran on, so a fresh asyncio.run() per batch would break them.
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    async def aclose(self) -> None:
        if self.ready:
            self.ready = False
            await self.stage.aclose()

    def close(self) -> None:
        """:meth:`aclose` for synchronous callers, on the worker's own loop."""
        loop = self._loop or asyncio.new_event_loop()
        try:
            loop.run_until_complete(self.aclose())
        finally:
            loop.close()
            self._loop = None
