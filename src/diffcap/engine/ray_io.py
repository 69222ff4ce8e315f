"""Streaming rows into Ray Data: a spool of JSONL files read lazily by a Ray datasource.

The driver never holds a run's rows whole: it writes the pending rows, streamed from the
run store, into ``RUN_DIR/spool/<invocation>/part-NNNNN.jsonl`` files of
:data:`SPOOL_ROWS` rows, and Ray Data reads them on the workers, one read task per file,
each yielding blocks of ``rows_per_block`` rows (one video per block by default, so CPU
actors share the work from the first video on). On a cluster the run directory is on
storage every node sees, as the keyframes already require.

    with RowSpool(run_dir) as spool:
        files = spool.write(rows)                 # [(path, n_rows), ...]
        ds = ray.data.read_datasource(SpoolSource(files, rows_per_block=1))

The rows come back through a :class:`BatchFeed`: Ray Data's iterator read on a thread, so the
driver waits on it with a watchdog (``engine.ray_stall_s``) and never blocks for good.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from diffcap.engine.control import RunControl
from diffcap.engine.rows import VideoRow
from diffcap.store.rundir import RunDir

logger = logging.getLogger(__name__)

#: Rows per spool file (one Ray read task each).
SPOOL_ROWS = 10_000


class RowSpool:
    """A folder of JSONL row files for one executor run; removed when the run ends."""

    def __init__(self, run_dir: str | Path, rows_per_file: int = SPOOL_ROWS) -> None:
        self.folder = RunDir(run_dir).spool_for(uuid.uuid4().hex[:12])
        self.rows_per_file = rows_per_file

    def write(self, rows: Iterable[VideoRow]) -> list[tuple[str, int]]:
        """Write ``rows`` in files of ``rows_per_file``; returns ``[(path, rows), ...]``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        files: list[tuple[str, int]] = []
        out, n = None, 0
        try:
            for row in rows:
                if out is None:
                    path = self.folder / f"part-{len(files):05d}.jsonl"
                    out, n = path.open("w", encoding="utf-8"), 0
                out.write(json.dumps(row.to_json()) + "\n")
                n += 1
                if n == self.rows_per_file:
                    out.close()
                    files.append((str(path), n))
                    out = None
        finally:
            if out is not None:
                out.close()
                files.append((str(path), n))
        return files

    def __enter__(self) -> RowSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        parent = self.folder.parent
        if parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()


def read_spool(path: str, rows_per_block: int) -> Iterator[Any]:
    """The blocks of one spool file: Arrow tables with one ``row`` column (JSON text)."""
    import pyarrow as pa

    batch: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            batch.append(line.rstrip("\n"))
            if len(batch) == rows_per_block:
                yield pa.table({"row": batch})
                batch = []
    if batch:
        yield pa.table({"row": batch})


def spool_source(files: list[tuple[str, int]], rows_per_block: int) -> Any:
    """A Ray Data datasource over spool files (built here so ray is imported lazily)."""
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    class SpoolSource(Datasource):
        def estimate_inmemory_data_size(self) -> int | None:
            return None

        def get_read_tasks(
            self,
            parallelism: int,
            per_task_row_limit: int | None = None,
            data_context: Any = None,
        ) -> list[ReadTask]:
            return [
                ReadTask(
                    functools.partial(read_spool, path, rows_per_block),
                    BlockMetadata(
                        num_rows=n, size_bytes=None, input_files=(path,), exec_stats=None
                    ),
                )
                for path, n in files
            ]

    return SpoolSource()  # type: ignore[no-untyped-call]  # ray is untyped here


class BatchFeed:
    """Ray Data's batches read on a thread, handed over a small queue, so the driver never
    blocks on the dataset for good (see :meth:`rows`). Rows are committed on the caller's
    thread (the run store's connection lives there)."""

    _END = object()

    def __init__(self, batches: Any) -> None:
        self.batches = batches
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=4)  # bounded: backpressure
        self.stopped = threading.Event()
        self.stalled = False
        self.thread = threading.Thread(target=self._pump, name="ray-feed", daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        try:
            for batch in self.batches:
                if not self._put(batch["row"]):
                    return
        except BaseException as exc:  # handed to the driver, raised there
            self._put(exc)
        else:
            self._put(self._END)
        finally:
            # Closed by this thread, between batches (a generator cannot be closed while
            # another thread runs it): the dataset's execution stops now, not when collected.
            with contextlib.suppress(Exception):
                self.batches.close()

    def _put(self, item: Any) -> bool:
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def rows(self, stall_s: float, control: RunControl) -> Iterator[str]:
        """The rows' JSON as they come back; ends when the dataset ends, on a stop, or when
        nothing came back for ``stall_s`` seconds (a warning: the watchdog)."""
        last = time.monotonic()
        while control.stop_reason() is None:
            try:
                item = self.queue.get(timeout=min(1.0, stall_s))
            except queue.Empty:
                if time.monotonic() - last >= stall_s:
                    logger.warning(
                        "Ray returned no video for %g s (engine.ray_stall_s): leaving this "
                        "dataset; the videos not back are tried alone",
                        stall_s,
                    )
                    self.stalled = True
                    return
                continue
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            last = time.monotonic()
            yield from item
        yield from self._drain()  # rows already back on a stop are committed; the others
        # stay pending in the store

    def _drain(self) -> Iterator[str]:
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return
            if item is self._END or isinstance(item, BaseException):
                return
            yield from item

    def close(self, wait_s: float = 30.0) -> None:
        """Stop reading; the reading thread closes the dataset after the batch it waits for
        (awaited up to ``wait_s``, as the spool is removed next). A stalled dataset is left
        to ``ray.shutdown``."""
        self.stopped.set()
        self.thread.join(timeout=0.0 if self.stalled else wait_s)
        if self.thread.is_alive():
            logger.info("Ray Data did not stop in %g s; it ends with Ray", wait_s)


def spooled_rows(files: list[tuple[str, int]]) -> Iterator[VideoRow]:
    """The rows written to spool files, read back one at a time."""
    for path, _ in files:
        with open(path, encoding="utf-8") as f:
            for line in f:
                yield VideoRow.from_json(json.loads(line))


__all__ = ["SPOOL_ROWS", "BatchFeed", "RowSpool", "read_spool", "spool_source", "spooled_rows"]
