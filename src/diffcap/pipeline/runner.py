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

import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from diffcap.config import RunConfig
from diffcap.config.resolve import config_to_dict, save_config
from diffcap.engine.job import Job, locked_store, storage_errors
from diffcap.engine.report import RunReport
from diffcap.engine.rows import VideoRow
from diffcap.engine.rundir import NewRunDir, check_model_identity
from diffcap.errors import (
    EXIT_BUDGET,
    EXIT_CODES,
    ConfigError,
)
from diffcap.io.ids import InputScan, conflict_recorder, new_assigner
from diffcap.io.inputs import iter_raw_inputs
from diffcap.io.outputs import write_outputs
from diffcap.io.publish import check_uri
from diffcap.io.sinks import RecordsFileSink
from diffcap.redact import redact
from diffcap.stages.registry import build_stages, stage_names
from diffcap.store import RunStore, VideoEntry
from diffcap.store.cache import ensure_run_id
from diffcap.store.db import STATUSES
from diffcap.store.rundir import RunDir

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


def run_dataset(
    inputs: list[str],
    run_dir: Path,
    cfg: RunConfig,
    *,
    command: str = "run",
    retry_failed: bool = False,
    progress: bool = True,
    records_file: Path | None = None,
    list_problems: bool = False,
) -> RunReport:
    """Run (or resume) ``command``'s pipeline in ``run_dir``; returns this invocation's
    report. ``records_file``: also write the done records of this invocation's inputs
    there, in input order (``diffcap caption --out``), in the same pass over the store as
    the run's own outputs. ``list_problems``: fill ``report.problems`` (this invocation's
    failed and filtered videos; it holds the ids of every input, so only when asked).
    Raises ConfigError, ModelUnavailable (before any video is touched), RunDirLocked and
    StorageError."""
    t0 = time.perf_counter()
    # Absolute: on a cluster, workers on other nodes resolve the run dir's paths themselves.
    stages = build_stages(stage_names(command, cfg), cfg, run_dir.absolute())
    new_dir = NewRunDir(run_dir)
    with (
        storage_errors(run_dir),
        new_dir,
        locked_store(run_dir, RunDir(run_dir).db, f"diffcap {command}", cfg.engine) as store,
    ):
        job = Job(stages, cfg, store=store, run_dir=run_dir)
        report, ids = _run_locked(job, inputs, retry_failed, progress, t0, new_dir, records_file)
        if list_problems and (report.failed_now or report.filtered_now or report.bad_inputs_now):
            report.problems = _problems(store, ids)
        return report


def _run_locked(
    job: Job,
    inputs: list[str],
    retry_failed: bool,
    progress: bool,
    t0: float,
    new_dir: NewRunDir,
    records_file: Path | None,
) -> tuple[RunReport, Iterable[str]]:
    store, run_dir, cfg = job.store, job.run_dir, job.cfg
    assert store is not None
    _bind_pipeline(store, [stage.name for stage in job.stages])  # a refusal changes nothing
    reg = register_inputs(store, inputs, cfg) if inputs else None
    ids = reg.ids if reg else _StoredIds(store)
    job.check()  # before any video is touched: a closed port fails here
    if cfg.output.uri:  # an unknown protocol or another run's folder fails now, not later
        check_uri(cfg.output.uri, ensure_run_id(store))
    # Only a run that passed its pre-flight saves its config (a failed rerun keeps the old)
    new_dir.started = True
    _remember_config(store, run_dir, cfg, any(stage.uses_models for stage in job.stages))
    if retry_failed:
        log.info("retrying %d failed videos", store.reset_failed())
    before = (store.spend(), store.replays())
    result = job.run(progress=progress)
    also = (
        {}
        if records_file is None
        else {"records_file": RecordsFileSink(records_file, RunDir(run_dir).records, ids)}
    )
    outputs = write_outputs(run_dir, store, cfg.output, also)
    records_written = outputs.pop("records_file", None)
    tally = result.tally
    report = RunReport(
        run_dir=str(run_dir),
        counts=store.counts(),
        done_now=tally.counts["done"],
        failed_now=tally.counts["failed"],
        filtered_now=tally.counts["filtered"],
        deferred_now=tally.counts["deferred"],
        bad_inputs_now=reg.bad if reg else 0,
        keyframes=tally.keyframes,
        total_cost_usd=store.spend()["cost_usd"],
        wall_s=time.perf_counter() - t0,
        stop_reason=result.stop_reason,
        bugs=result.bugs,
        error_log=str(tally.error_log) if result.bugs else None,
        last_fault=_fault_line(result.control.last_fault),
        damaged=tally.damaged,
        outputs=outputs,
        **_usage_since(store, *before),
    )
    report.records_written = records_written
    store.set_meta("last_run", report.to_json())
    return report, ids


def _problems(store: RunStore, ids: Iterable[str]) -> list[dict[str, Any]]:
    """The failed and filtered videos among this invocation's inputs, and the run's bad
    inputs (what ``diffcap keyframes`` lists)."""
    wanted = set(ids)
    out = [
        {k: v[k] for k in ("video_id", "source", "status", "reason", "error")}
        for v in store.videos(["failed", "filtered"])
        if v["video_id"] in wanted
    ]
    out += [
        {"video_id": None, "source": b["source"], "status": "bad_input", "reason": b["reason"],
         "error": b["error"]}
        for b in store.bad_inputs()
    ]  # fmt: skip
    return out


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


def _remember_config(store: RunStore, run_dir: Path, cfg: RunConfig, models: bool) -> None:
    if models:  # (a keyframes run calls none: no fingerprints, nothing to compare)
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
    save_config(cfg, RunDir(run_dir).config)


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
