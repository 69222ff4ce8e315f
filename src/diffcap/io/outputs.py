"""Output files of a run, (re)written from the run database so they never hold duplicates.

    write_outputs(run_dir, store, OutputConfig())
    for record in iter_records(run_dir):      # VideoRecord, input order, from run.sqlite
        record.video_id, record.summary

Layout: ``records/records-00000.jsonl`` shards of ``shard_size`` lines (keyframe ``file``
paths relative to ``records/``), ``records.parquet`` (schema :data:`RECORD_SCHEMA`, loads in
Hugging Face ``datasets``), ``failures.jsonl`` and ``filtered.jsonl``. Each file is written
to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from diffcap.config import OutputConfig
from diffcap.errors import ConfigError
from diffcap.fsutil import atomic_open
from diffcap.io.publish import publish_outputs
from diffcap.io.sinks import ParquetSink, ShardSink, Sink, feed
from diffcap.redact import redact_data
from diffcap.store.cache import ensure_run_id
from diffcap.store.db import RunStore
from diffcap.store.rundir import RunDir
from diffcap.timeline import VideoRecord

log = logging.getLogger(__name__)


def store_path(run_dir: str | Path) -> Path:
    return RunDir(run_dir).db


def open_run(run_dir: str | Path) -> RunStore:
    path = store_path(run_dir)
    if not path.is_file():
        raise ConfigError(
            f"{run_dir}: not a diffcap run directory (no run.sqlite)",
            hint="pass the --out folder of a `diffcap run`",
        )
    return RunStore.open_readonly(path)


def iter_records(run_dir: str | Path, *, as_dict: bool = False) -> Iterator[Any]:
    """Records of a run's done videos in input order, from ``run.sqlite`` (the source of
    truth). Keyframe ``file`` paths are relative to ``RUN_DIR/records``."""
    store = open_run(run_dir)
    try:
        for rec in store.iter_records():
            yield rec if as_dict else VideoRecord.from_json(rec)
    finally:
        store.close()


def run_sinks(run_dir: Path, cfg: OutputConfig) -> dict[str, Sink]:
    """The record sinks of a run directory (``output.*``): shards, and Parquet when set."""
    run = RunDir(run_dir)
    sinks: dict[str, Sink] = {"shards": ShardSink(run.records, cfg.shard_size)}
    if cfg.parquet:
        sinks["parquet"] = ParquetSink(run.parquet)
    return sinks


def write_outputs(
    run_dir: str | Path,
    store: RunStore,
    cfg: OutputConfig,
    also: Mapping[str, Sink] | None = None,
) -> dict[str, Any]:
    """Rewrite every output file from the database, the records read once for every sink
    (the run's and ``also``'s, e.g. ``caption``'s records file); returns what was written
    (``also``'s results under their names too)."""
    run = RunDir(run_dir)
    extra = dict(also or {})
    fed = feed(store.iter_records(), {**run_sinks(run.root, cfg), **extra})
    written = {k: v for k, v in fed.items() if k not in extra}
    written["failures"] = _write_jsonl(run.failures, _failures(store))
    written["filtered"] = _write_jsonl(run.filtered, _filtered(store))
    if cfg.uri:
        run_id = ensure_run_id(store)
        written["published"] = publish_outputs(run.root, written, cfg.uri, run_id=run_id)
    return {**written, **{k: fed[k] for k in extra}}


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    # redacted here too: a store written before redaction existed may hold key text
    lines = (json.dumps(redact_data(r), ensure_ascii=False) for r in rows)
    with atomic_open(path) as f:
        n = 0
        for line in lines:
            f.write(line + "\n")
            n += 1
    return n


def _failures(store: RunStore) -> Iterator[dict[str, Any]]:
    for v in store.iter_videos(["failed"]):
        yield {
            "video_id": v["video_id"],
            "source": v["source"],
            "stage": v["stage"],
            "reason": v["reason"],
            "error": v["error"],
            "attempts": v["attempts"],
        }
    for b in store.bad_inputs():
        yield {
            "video_id": None,
            "source": b["source"],
            "row": b["row"],
            "stage": "input",
            "reason": b["reason"],
            "error": b["error"],
            "attempts": 0,
        }


def _filtered(store: RunStore) -> Iterator[dict[str, Any]]:
    for v in store.iter_videos(["filtered"]):
        yield {
            "video_id": v["video_id"],
            "source": v["source"],
            "stage": v["stage"],
            "reason": v["reason"],
            "detail": v["error"],
            "duration": v["duration"],
            "duplicate_of": v["duplicate_of"],
            "similarity": v["similarity"],
        }
