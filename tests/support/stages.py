"""Small stages for contract tests (importable by executor workers: pools and Ray actors)."""

from __future__ import annotations

import asyncio
from typing import Any

from diffcap.engine.rows import VideoRow
from diffcap.engine.stage import CpuStage, IoStage, Resources, Stage
from diffcap.errors import NotAVideo


class AsyncUpper(IoStage):
    """An I/O-style stage: async, several rows at once; "FAIL" is a permanent failure."""

    name = "upper"

    @property
    def resources(self) -> Resources:
        return Resources(cpus=0, concurrency=3)

    async def aprocess_row(self, row: VideoRow) -> VideoRow:
        await asyncio.sleep(0.01)
        if row.caption == "FAIL":
            return row.fail(self.name, NotAVideo(row.source, "told to fail"))
        row.caption = (row.caption or "").upper()
        return row


class CpuLength(CpuStage):
    """A CPU stage (process pool locally, one-CPU actors on Ray)."""

    name = "length"

    def process_row(self, row: VideoRow) -> VideoRow:
        row.caption = f"{row.caption}:{len(row.caption or '')}"
        return row


class GpuTag(CpuStage):
    """Declares one GPU per worker (a fake GPU on a simulated Ray cluster) and tags each row
    with the Ray node, the process and the GPU ids that ran it."""

    name = "gpu_tag"

    @property
    def resources(self) -> Resources:
        return Resources(cpus=0, gpus=1, concurrency=2)

    def process_row(self, row: VideoRow) -> VideoRow:
        import os

        import ray

        node = ray.get_runtime_context().get_node_id()
        row.caption = f"{node}|{os.getpid()}|{ray.get_gpu_ids()}"
        return row


class BytesRecord(CpuStage):
    """Leaves a value JSON cannot hold in the record of rows captioned "BYTES" (a bug)."""

    name = "bytes_record"

    @property
    def resources(self) -> Resources:
        return Resources(cpus=0, concurrency=4)

    def process_row(self, row: VideoRow) -> VideoRow:
        row.record = {"blob": b"\x00raw"} if row.caption == "BYTES" else {"ok": True}
        return row


class CrashOn(CpuStage):
    """A CPU stage whose worker process dies (as a decoder crash kills it) on rows captioned
    "CRASH"; other rows get ":ok" appended."""

    name = "crash_on"

    def process_row(self, row: VideoRow) -> VideoRow:
        import os

        if row.caption == "CRASH":
            os._exit(1)
        row.caption = f"{row.caption}:ok"
        return row


class HangOn(CpuStage):
    """A CPU stage that never finishes rows captioned "HANG" (a stuck decoder); other rows
    get ":ok" appended."""

    name = "hang_on"

    def process_row(self, row: VideoRow) -> VideoRow:
        import time

        if row.caption == "HANG":
            time.sleep(3600)
        row.caption = f"{row.caption}:ok"
        return row


class NoSpend:
    """A store stand-in for ``RunControl`` when an executor runs rows without a run store."""

    def spend(self) -> dict:
        return {"cost_usd": 0.0}


def run_rows(
    executor_cls: type, cfg: Any, rows: list[VideoRow], stages: list[Stage]
) -> list[VideoRow]:
    """Run ``rows`` through ``stages`` with an executor class; the rows that came back."""
    from diffcap.engine.control import RunControl

    got: list[VideoRow] = []
    executor_cls(cfg, progress=False).run(
        rows, stages, got.append, RunControl(NoSpend(), cfg.engine)
    )
    return got
