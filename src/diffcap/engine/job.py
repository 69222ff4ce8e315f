"""One job runner under every command that runs stages: ``run``, ``caption``, ``keyframes``,
``eval`` and ``export --format clips``.

A :class:`Job` is a stage list, the rows to run (a run store's pending videos, or given
rows) and the store their outcomes are committed to (or none: an export over a records
file). ``Job.run`` runs it through the executor of ``engine.engine`` (local or Ray) under
the run control (cost cap, endpoint breaker, SIGTERM), commits every row as it ends and
returns what happened. Commands differ only in how they build the job and what they write
from the store afterwards.

    run = RunDir(run_dir)
    with storage_errors(run_dir), locked_store(run_dir, run.db, "my tool", engine) as store:
        job = Job(stages, cfg, store=store, run_dir=run_dir)
        job.check()                       # pre-flight: a closed port fails here
        result = job.run(progress=True)
        result.counts, result.stop_reason, result.bugs
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.contrib.logging import logging_redirect_tqdm

from diffcap.config import EngineConfig, RunConfig
from diffcap.engine.control import RunControl
from diffcap.engine.pipeline import Pipeline, make_executor
from diffcap.engine.rows import VideoRow
from diffcap.engine.stage import Stage
from diffcap.errors import WORLD_ERRNOS, StorageError, world_fault_reason
from diffcap.redact import install_log_filter, redact
from diffcap.shutdown import graceful_sigterm
from diffcap.store import RunStore
from diffcap.store.db import damaged, damaged_store
from diffcap.store.lock import RunLock
from diffcap.store.rundir import RunDir

log = logging.getLogger(__name__)

__all__ = ["Job", "JobResult", "Tally", "locked_store", "storage_errors"]


@contextlib.contextmanager
def storage_errors(run_dir: Path, db: Path | None = None) -> Iterator[None]:
    """Disk full, read-only and permission errors of the run directory as one-line
    :class:`StorageError` s (nothing is marked failed; rerun once fixed); ``db``: its store
    (the run's ``run.sqlite`` when None)."""
    try:
        yield
    except (OSError, sqlite3.DatabaseError) as exc:
        if damaged(exc):  # the run DB itself, found damaged mid-run: not a bug
            raise damaged_store(db or RunDir(run_dir).db, exc) from None
        if isinstance(exc, OSError) and exc.errno not in WORLD_ERRNOS:
            raise
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
            raise
        what = world_fault_reason(exc).replace("_", " ")
        raise StorageError(
            f"{run_dir}: cannot write the run directory ({what}: {exc})",
            hint="free space or fix permissions, then rerun the same command; finished "
            "work is kept",
        ) from exc


@contextlib.contextmanager
def locked_store(
    run_dir: Path, db: Path, owner: str, engine: EngineConfig | None = None
) -> Iterator[RunStore]:
    """``run_dir`` created and locked (one writer per run directory) and its store ``db``
    open,
    for the whole block, with the request cache of ``engine`` (the run's SQLite, or the
    PostgreSQL of ``engine.cache_url``: where workers write answers, spend and replays)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(run_dir, owner):
        store = RunStore.open(db, engine=engine)
        try:
            yield store
        finally:
            store.close()


class Tally:
    """The driver's ``on_row``: commits each row (when there is a store), shows it to the
    run control, counts this invocation, logs bugs to ``RUN_DIR/logs/errors.log``."""

    def __init__(self, store: RunStore | None, control: RunControl, run_dir: Path) -> None:
        self.store, self.control, self.run_dir = store, control, run_dir
        self.counts = {"done": 0, "failed": 0, "filtered": 0, "deferred": 0}
        self.keyframes = 0
        self.damaged: list[tuple[str, str]] = []

    def __call__(self, row: VideoRow) -> None:
        if row.traceback:
            self._log_bug(row)
        if self.store is not None:
            self.store.commit_row(row)
        self.control.observe(row)
        if row.status in self.counts:
            self.counts[row.status] += 1
        if row.status == "done" and row.record:
            self.keyframes += len(row.record.get("keyframes") or [])
        if row.damaged and row.status == "done":
            self.damaged.append((row.video_id, str(row.damaged.get("message", "damaged"))))

    @property
    def error_log(self) -> Path:
        return RunDir(self.run_dir).errors_log

    def _log_bug(self, row: VideoRow) -> None:
        self.error_log.parent.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self.error_log.open("a", encoding="utf-8") as f:
            f.write(redact(f"--- {stamp} {row.video_id} ({row.source}) stage {row.stage}\n"))
            f.write(redact(row.traceback or ""))
        log.error("%s: internal error in %s: %s", row.video_id, row.stage, row.error)


@dataclass
class JobResult:
    """What one ``Job.run`` did."""

    tally: Tally
    control: RunControl
    #: Why the run stopped before its last stage ("dedup_waits"), if it did.
    waiting: str | None = None
    ended: list[VideoRow] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return self.tally.counts

    @property
    def stop_reason(self) -> str | None:
        return self.control.stop_reason() or self.waiting

    @property
    def bugs(self) -> int:
        return self.control.bugs


@dataclass
class Job:
    """A stage list over rows, committed to a store (see the module docstring)."""

    stages: list[Stage]
    cfg: RunConfig
    #: Where outcomes are committed, and the request cache's and cost cap's run; None: an
    #: export over a records file (rows given, nothing persisted).
    store: RunStore | None = None
    #: Where ``logs/errors.log`` goes.
    run_dir: Path = Path(".")
    #: The rows to run; None: the store's pending videos (streamed, never held whole).
    rows: Iterable[VideoRow] | None = None
    #: Keep the rows that ended in ``JobResult.ended`` (exports that write from rows).
    keep_rows: bool = False

    def check(self) -> None:
        """Fail fast, before any video is touched (a model that cannot be reached)."""
        for stage in self.stages:
            stage.preflight()

    def run(self, *, progress: bool = True) -> JobResult:
        control = RunControl(self.store, self.cfg.engine)
        result = JobResult(Tally(self.store, control, self.run_dir), control)
        on_row = self._on_row(result)
        pipeline = Pipeline(self.stages)
        # Log lines go above the progress bars instead of through them.
        redirect = logging_redirect_tqdm() if progress else contextlib.nullcontext()
        with redirect, graceful_sigterm():
            install_log_filter()  # tqdm's handlers replace the root's, and their filters
            pipeline.run(
                make_executor(self.cfg, progress=progress),
                self.store,
                control,
                on_row,
                rows=self.rows,
            )
        result.waiting = pipeline.waiting
        return result

    def _on_row(self, result: JobResult) -> Callable[[VideoRow], Any]:
        if not self.keep_rows:
            return result.tally

        def keep(row: VideoRow) -> None:
            result.tally(row)
            result.ended.append(row)

        return keep
