"""Run (or resume) a pipeline in a run directory: the one entry under ``keyframes``,
``caption`` and ``run``.

    report = run_dataset(["videos/"], Path("runs/demo"), cfg)               # diffcap run
    report = run_dataset(["a.mp4"], Path("a.run"), cfg, command="keyframes")
    report.counts      # {"done": 10, "failed": 0, "filtered": 2, "pending": 0}
    report.exit_code   # 0, or why it stopped (see EXIT_CODES)

The run directory is locked for the whole run; every outcome is committed to
``RUN_DIR/run.sqlite`` as it happens. Reruns resume: done and filtered videos are skipped,
failed ones too unless ``retry_failed``; deferred ones (faults of the world, the cost cap,
bugs) are retried; finished model calls are replayed from the request cache. Ids are bound
to their source in the run DB, so a rerun with more (or reordered) inputs keeps every id.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from tqdm.contrib.logging import logging_redirect_tqdm

from diffcap.config import RunConfig
from diffcap.config.resolve import config_to_dict, save_config
from diffcap.engine.control import RunControl
from diffcap.engine.pipeline import Pipeline, make_executor
from diffcap.engine.report import RunReport
from diffcap.engine.rows import VideoRow
from diffcap.engine.rundir import NewRunDir, check_model_identity
from diffcap.errors import (
    EXIT_BUDGET,
    EXIT_CODES,
    WORLD_ERRNOS,
    ConfigError,
    StorageError,
    world_fault_reason,
)
from diffcap.io.ids import InputScan, conflict_recorder, new_assigner
from diffcap.io.inputs import iter_raw_inputs
from diffcap.io.outputs import write_outputs
from diffcap.io.publish import check_uri
from diffcap.redact import install_log_filter, redact
from diffcap.shutdown import graceful_sigterm
from diffcap.stages.registry import build_stages, stage_names
from diffcap.store import RunStore, VideoEntry
from diffcap.store.cache import adopt_run_cache, ensure_run_id
from diffcap.store.db import STATUSES, damaged, damaged_store
from diffcap.store.lock import RunLock

log = logging.getLogger(__name__)

#: Settings that cannot change a record's content: how the run is executed, what it may
#: spend, how its outputs are laid out (rewritten from the DB on every run) and which inputs
#: it lists or downloads. Changing only these between runs is not worth a warning.
_NOT_IN_RECORDS: dict[str, set[str] | None] = {
    "engine": None,  # None: the whole section
    "output": None,
    "input": None,
    "model": {"concurrency", "timeout_s", "warn_after_s", "max_retries", "give_up_after_s"},
}


class Registration(NamedTuple):
    added: int  # videos new to the run DB
    bad: int  # inputs that name no usable video (stored aside, listed in failures.jsonl)
    ids: Iterable[str]  # the ids of the inputs given, in input order (re-iterable, lazy)


class _InputIds:
    """The ids of this invocation's inputs, read back from the registration's temporary
    table page by page (a run of millions of inputs never holds them in a list)."""

    def __init__(self, assigner: Any) -> None:
        self.assigner = assigner

    def __iter__(self) -> Iterator[str]:
        return self.assigner.ids()

    def __len__(self) -> int:
        return int(self.assigner.count())


class _StoredIds:
    """Every registered id in input order, read from the run DB when iterated."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    def __iter__(self) -> Iterator[str]:
        return (v["video_id"] for v in self.store.iter_videos(STATUSES))


def register_inputs(store: RunStore, inputs: list[str], cfg: RunConfig) -> Registration:
    """Register the inputs, streamed (manifest rows are never all in memory); sources the
    run DB knows keep their ids (see pipeline.ids). Bad inputs (missing files, broken
    links, bad manifest rows) are stored aside."""
    scan = InputScan()
    with store.transaction() as conn:
        assigner = new_assigner(conn)  # the id policy over temporary tables of the run DB
        for fields, origin, n in iter_raw_inputs(inputs, cfg.input, scan):
            assigner.add(fields, origin, n)
        assigner.assign(conflict_recorder(scan))
    # strict: ids were chosen against the DB, so a conflict here means another process
    # registered inputs in between; re-binding would caption the wrong file.
    added = store.add_videos((VideoEntry(*item) for item in assigner.items()), strict=True)
    for bad in scan.bad:
        store.add_bad_input(bad.source, bad.row, bad.reason, bad.error)
    ids = _InputIds(assigner)
    log.info("%d videos listed (%d new), %d bad inputs", len(ids), added, len(scan.bad))
    return Registration(added, len(scan.bad), ids)


class _Tally:
    """The driver's ``on_row``: commits each row, counts this invocation, logs bugs."""

    def __init__(self, store: RunStore, control: RunControl, run_dir: Path) -> None:
        self.store, self.control, self.run_dir = store, control, run_dir
        self.counts = {"done": 0, "failed": 0, "filtered": 0, "deferred": 0}
        self.keyframes = 0
        self.damaged: list[tuple[str, str]] = []

    def __call__(self, row: VideoRow) -> None:
        if row.traceback:
            self._log_bug(row)
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
        return self.run_dir / "logs" / "errors.log"

    def _log_bug(self, row: VideoRow) -> None:
        self.error_log.parent.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self.error_log.open("a", encoding="utf-8") as f:
            f.write(redact(f"--- {stamp} {row.video_id} ({row.source}) stage {row.stage}\n"))
            f.write(redact(row.traceback or ""))
        log.error("%s: internal error in %s: %s", row.video_id, row.stage, row.error)


@contextlib.contextmanager
def storage_errors(run_dir: Path) -> Iterator[None]:
    """Disk full, read-only and permission errors of the run directory as one-line
    :class:`StorageError` s (nothing is marked failed; rerun once fixed)."""
    try:
        yield
    except (OSError, sqlite3.DatabaseError) as exc:
        if damaged(exc):  # the run DB itself, found damaged mid-run: not a bug
            raise damaged_store(run_dir / "run.sqlite", exc) from None
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


def run_dataset(
    inputs: list[str],
    run_dir: Path,
    cfg: RunConfig,
    *,
    command: str = "run",
    retry_failed: bool = False,
    progress: bool = True,
    finish: Callable[[RunStore, Iterable[str]], Any] | None = None,
) -> RunReport:
    """Run (or resume) ``command``'s pipeline in ``run_dir``; returns this invocation's
    report. ``finish(store, ids)`` runs at the end, still under the run lock, with the ids
    of this invocation's inputs (every registered id when resuming without inputs).
    Raises ConfigError, ModelUnavailable (before any video is touched), RunDirLocked and
    StorageError."""
    t0 = time.perf_counter()
    names = stage_names(command, cfg)
    # Absolute: on a cluster, workers on other nodes resolve the run dir's paths themselves.
    pipeline = Pipeline(build_stages(names, cfg, run_dir.absolute()))
    new_dir = NewRunDir(run_dir)
    with storage_errors(run_dir), new_dir:
        run_dir.mkdir(parents=True, exist_ok=True)
        with RunLock(run_dir, f"diffcap {command}"):
            store = RunStore.open(run_dir / "run.sqlite")
            try:
                report, ids = _run_locked(
                    store, pipeline, inputs, run_dir, cfg, retry_failed, progress, t0, new_dir
                )
                if finish is not None:
                    finish(store, ids)
                return report
            finally:
                store.close()


def _run_locked(
    store: RunStore,
    pipeline: Pipeline,
    inputs: list[str],
    run_dir: Path,
    cfg: RunConfig,
    retry_failed: bool,
    progress: bool,
    t0: float,
    new_dir: NewRunDir,
) -> tuple[RunReport, Iterable[str]]:
    _bind_pipeline(store, pipeline.names)  # a refused command changes nothing
    reg = register_inputs(store, inputs, cfg) if inputs else None
    ids = reg.ids if reg else _StoredIds(store)
    bad_inputs = reg.bad if reg else 0
    pipeline.check()  # before any video is touched: a closed port fails here
    if cfg.output.uri:  # an unknown protocol or another run's folder fails now, not later
        check_uri(cfg.output.uri, ensure_run_id(store))
    # Only a run that passed its pre-flight saves its config (a failed rerun keeps the old)
    new_dir.started = True
    _remember_config(store, run_dir, cfg)
    if retry_failed:
        log.info("retrying %d failed videos", store.reset_failed())
    adopt_run_cache(store, cfg.engine)  # spend and replays from where workers write them
    control = RunControl(store, cfg.engine)
    tally = _Tally(store, control, run_dir)
    before = (store.spend(), store.replays())
    # Log lines go above the progress bars instead of through them.
    with logging_redirect_tqdm() if progress else contextlib.nullcontext(), graceful_sigterm():
        install_log_filter()  # tqdm's handlers replace the root's, and their filters
        pipeline.run(make_executor(cfg, progress=progress), store, control, tally)
    outputs = write_outputs(run_dir, store, cfg.output)
    report = RunReport(
        run_dir=str(run_dir),
        counts=store.counts(),
        done_now=tally.counts["done"],
        failed_now=tally.counts["failed"],
        filtered_now=tally.counts["filtered"],
        deferred_now=tally.counts["deferred"],
        bad_inputs_now=bad_inputs,
        keyframes=tally.keyframes,
        total_cost_usd=store.spend()["cost_usd"],
        wall_s=time.perf_counter() - t0,
        stop_reason=control.stop_reason() or pipeline.waiting,
        bugs=control.bugs,
        error_log=str(tally.error_log) if control.bugs else None,
        last_fault=_fault_line(control.last_fault),
        damaged=tally.damaged,
        outputs=outputs,
        **_usage_since(store, *before),
    )
    store.set_meta("last_run", report.to_json())
    return report, ids


def _fault_line(row: VideoRow | None) -> str | None:
    return (
        None if row is None else redact(f"{row.video_id} [{row.stage}/{row.reason}]: {row.error}")
    )


def _bind_pipeline(store: RunStore, names: list[str]) -> None:
    """A run dir belongs to one stage list. A longer list that keeps the old one's stages
    (``keyframes`` then ``run``) re-opens done videos: keyframes and cached calls are
    reused. Any other change is refused."""
    previous = store.get_meta("pipeline")
    if previous is not None and previous != names:
        if not set(previous) <= set(names):
            raise ConfigError(
                f"{store.path.parent} holds a run of stages {' -> '.join(previous)}, "
                f"not {' -> '.join(names)}",
                hint="use another --out for this command",
            )
        reopened = store.reset_done()
        log.info("stages grew to %s: %d done videos re-opened", names, reopened)
    store.set_meta("pipeline", names)


def _remember_config(store: RunStore, run_dir: Path, cfg: RunConfig) -> None:
    check_model_identity(store, run_dir, cfg)
    previous = store.get_meta("config")
    current = config_to_dict(cfg)
    changed = config_changes(previous, current) if previous is not None else []
    if changed:
        log.warning(
            "%s: the config differs from the previous run's (%s); done videos keep their "
            "records, the rest use the new config",
            run_dir,
            ", ".join(changed[:8]) + (" ..." if len(changed) > 8 else ""),
        )
    store.set_meta("config", current)
    save_config(cfg, run_dir / "config.yaml")


def config_changes(previous: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two ``config_to_dict`` dicts, leaving out the
    settings that do not shape records (``_NOT_IN_RECORDS``)."""
    out = []
    for section in sorted(set(previous) | set(current)):
        skip = _NOT_IN_RECORDS.get(section, set())
        if skip is None:
            continue
        old, new = previous.get(section) or {}, current.get(section) or {}
        if not isinstance(old, dict) or not isinstance(new, dict):
            out += [section] if old != new else []
            continue
        keys = (set(old) | set(new)) - skip
        out += [f"{section}.{k}" for k in sorted(keys) if old.get(k) != new.get(k)]
    return out


def _usage_since(store: RunStore, spent: dict[str, Any], replays: int) -> dict[str, Any]:
    """This invocation's traffic, from the run DB (so Ray actors' requests count too)."""
    now = store.spend()
    return {
        "requests_new": now["requests"] - spent["requests"],
        "requests_cached": store.replays() - replays,
        "prompt_tokens": now["prompt_tokens"] - spent["prompt_tokens"],
        "completion_tokens": now["completion_tokens"] - spent["completion_tokens"],
        "cost_usd": now["cost_usd"] - spent["cost_usd"],
    }


__all__ = ["EXIT_BUDGET", "EXIT_CODES", "register_inputs", "run_dataset"]
