"""Small stages for contract tests (importable by executor workers: pools and Ray actors)."""

from __future__ import annotations

import asyncio

from diffcap.errors import NotAVideo
from diffcap.pipeline.rows import VideoRow
from diffcap.pipeline.stage import Resources, Stage


class AsyncUpper(Stage):
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


class CpuLength(Stage):
    """A CPU stage (process pool locally, one-CPU actors on Ray)."""

    name = "length"

    def process_row(self, row: VideoRow) -> VideoRow:
        row.caption = f"{row.caption}:{len(row.caption or '')}"
        return row
