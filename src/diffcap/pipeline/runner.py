"""Run a dataset: inputs -> prepare -> (short captions -> de-dup) -> keyframes -> caption,
with every outcome committed to ``RUN_DIR/run.sqlite`` as it happens.

    report = run_dataset(["videos/"], Path("runs/demo"), cfg)
    report.counts      # {"done": 10, "failed": 0, "filtered": 2, "pending": 0}

Reruns resume: done and filtered videos are skipped, failed ones too unless
``retry_failed``; finished model calls are replayed from the request cache. Ids are bound to
their source in the run DB, so a rerun with more (or reordered) inputs keeps every known id.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm.contrib.logging import logging_redirect_tqdm

from diffcap.config import RunConfig
from diffcap.errors import ConfigError
from diffcap.pipeline.configure import config_to_dict, save_config
from diffcap.pipeline.inputs import collect_inputs
from diffcap.pipeline.outputs import write_outputs
from diffcap.pipeline.report import RunReport
from diffcap.pipeline.rows import Row, new_row
from diffcap.pipeline.stages import Stage, build_stages
from diffcap.store import RunStore, VideoEntry

log = logging.getLogger(__name__)

#: Exit code of ``diffcap run`` when the cost cap stopped the run (resume with a higher cap).
EXIT_BUDGET = 3

Engine = Callable[[list[Row], Sequence[Stage], Callable[[Row], Any]], bool]


#: Settings that cannot change a record's content: how the run is executed, what it may
#: spend, how its outputs are laid out (rewritten from the DB on every run) and which inputs
#: it lists or downloads. Changing only these between runs is not worth a warning.
_NOT_IN_RECORDS: dict[str, set[str] | None] = {
    "engine": None,  # None: the whole section
    "output": None,
    "input": None,
    "model": {"concurrency", "timeout_s", "max_retries"},
}


def register_inputs(store: RunStore, inputs: list[str], cfg: RunConfig) -> int:
    """Register the inputs; sources the run DB knows keep their ids (see pipeline.inputs)."""
    scan = collect_inputs(inputs, cfg.input, known=store.registered())
    # strict: ids were chosen against the DB, so a conflict here means another process
    # registered inputs in between; re-binding would caption the wrong file.
    added = store.add_videos(
        (VideoEntry(i.video_id, i.source, i.start, i.end, i.caption) for i in scan.items),
        strict=True,
    )
    for bad in scan.bad:
        store.add_bad_input(bad.source, bad.row, bad.reason, bad.error)
    log.info("%d videos listed (%d new), %d bad input rows", len(scan.items), added, len(scan.bad))
    return added


def _engine(cfg: RunConfig, progress: bool) -> Engine:
    if cfg.engine.engine == "ray":
        try:
            from diffcap.pipeline.ray_runner import run_stages_ray
        except ModuleNotFoundError as exc:
            if exc.name != "diffcap.pipeline.ray_runner":
                raise
            raise ConfigError(
                "the Ray engine is not available in this diffcap build",
                hint="use --engine local",
            ) from exc

        def ray_engine(rows: list[Row], stages: Sequence[Stage], on_row: Callable) -> bool:
            stopped = False
            for row in run_stages_ray(rows, stages, cfg.engine, progress=progress):
                stopped = stopped or row.get("reason") == "budget"
                on_row(row)
            return stopped

        return ray_engine
    from diffcap.pipeline.local import run_stages_local

    def local_engine(rows: list[Row], stages: Sequence[Stage], on_row: Callable) -> bool:
        return run_stages_local(rows, stages, cfg, on_row, progress=progress)

    return local_engine


class _Tally:
    """Commits rows and counts what this invocation did."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.counts = {"done": 0, "failed": 0, "filtered": 0, "pending": 0}
        self.keyframes = 0
        self.usage = {"requests": 0, "cached": 0}

    def __call__(self, row: Row) -> None:
        status = self.store.commit_row(row)
        self.counts[status] += 1
        if status == "done":
            rec = row["record"]
            self.keyframes += len((json.loads(rec) if isinstance(rec, str) else rec)["keyframes"])


def run_dataset(
    inputs: list[str],
    run_dir: Path,
    cfg: RunConfig,
    *,
    retry_failed: bool = False,
    progress: bool = True,
) -> RunReport:
    """Run (or resume) the dataset in ``run_dir``; returns the report of this invocation."""
    t0 = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    store = RunStore.open(run_dir / "run.sqlite")
    try:
        _remember_config(store, run_dir, cfg)
        if inputs:
            register_inputs(store, inputs, cfg)
        if retry_failed:
            log.info("retrying %d failed videos", store.reset_failed())
        tally = _Tally(store)
        engine = _engine(cfg, progress)
        before = (store.spend(), store.replays())
        # Log lines go above the progress bars instead of through them.
        with logging_redirect_tqdm() if progress else contextlib.nullcontext():
            stopped = _execute(store, run_dir, cfg, engine, tally)
        stats = _usage_since(store, *before)
        outputs = write_outputs(run_dir, store, cfg.output)
        report = RunReport(
            run_dir=str(run_dir),
            counts=store.counts(),
            done_now=tally.counts["done"],
            failed_now=tally.counts["failed"],
            filtered_now=tally.counts["filtered"],
            keyframes=tally.keyframes,
            total_cost_usd=store.spend()["cost_usd"],
            wall_s=time.perf_counter() - t0,
            stopped_by_budget=stopped,
            outputs=outputs,
            **stats,
        )
        store.set_meta("last_run", report.to_json())
        return report
    finally:
        store.close()


def _remember_config(store: RunStore, run_dir: Path, cfg: RunConfig) -> None:
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


def _execute(store: RunStore, run_dir: Path, cfg: RunConfig, engine: Engine, tally: _Tally) -> bool:
    rows = [new_row(v) for v in store.videos(["pending"])]
    first = build_stages(
        cfg, run_dir, ["prepare", "short_caption"] if cfg.filter.dedup else ["prepare"]
    )
    second = build_stages(cfg, run_dir, ["keyframes", "caption"])
    survivors: list[Row] = []

    def keep(row: Row) -> None:
        tally(row)
        if row["status"] == "pending" and row.get("reason") != "budget":
            survivors.append(row)

    stopped = engine(rows, first, keep)
    if not stopped and cfg.filter.dedup and rows:
        # De-dup is a barrier: it needs every candidate's short caption (a budget stop
        # above leaves some without one, so de-dup and captioning wait for the next run).
        survivors = apply_dedup(store, cfg, survivors, tally)
    if not stopped and survivors:
        order = {r["video_id"]: i for i, r in enumerate(survivors)}
        survivors.sort(key=lambda r: order[r["video_id"]])
        stopped = engine(survivors, second, tally)
    return stopped


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


def apply_dedup(store: RunStore, cfg: RunConfig, pending: list[Row], tally: _Tally) -> list[Row]:
    """Greedy semantic de-dup over every candidate in input order (done ones included, so a
    resumed run takes the same decisions); drops pending duplicates as ``filtered``."""
    from diffcap.pipeline.dedup import Duplicate, dedup_from_config

    candidates = [v for v in store.videos(["pending", "done"]) if v["caption"]]
    if not candidates:
        return pending
    ids, texts = [v["video_id"] for v in candidates], [v["caption"] for v in candidates]
    fc = cfg.filter
    key = hashlib.sha256(
        json.dumps([ids, texts, fc.dedup_model, fc.dedup_threshold, fc.dedup_index]).encode()
    ).hexdigest()
    saved = store.get_meta("dedup") or {}
    if saved.get("key") == key:  # same candidates and settings: same decisions, no model load
        dropped = {k: Duplicate(k, d, s) for k, (d, s) in saved["dropped"].items()}
    else:
        dropped = {d.id: d for d in dedup_from_config(ids, texts, fc).duplicates()}
        store.set_meta(
            "dedup",
            {
                "key": key,
                "dropped": {k: [d.duplicate_of, d.similarity] for k, d in dropped.items()},
            },
        )
    kept = []
    for row in pending:
        dup = dropped.pop(row["video_id"], None)
        if dup is None:
            kept.append(row)
            continue
        row.update(
            status="filtered",
            stage="dedup",
            reason="duplicate",
            duplicate_of=dup.duplicate_of,
            similarity=dup.similarity,
            error=f"short caption is {dup.similarity:.3f} similar to {dup.duplicate_of}'s "
            f"(threshold {cfg.filter.dedup_threshold:g})",
        )
        tally(row)
    for dup in dropped.values():  # already done in an earlier run: records are kept
        log.warning(
            "%s is done but now looks like a duplicate of %s; kept", dup.id, dup.duplicate_of
        )
    return kept
