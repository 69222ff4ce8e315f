"""Output sinks: where a job's records go, fed in one pass over the run store.

A sink gets every done record (a JSON-able dict, keyframe paths relative to
``RUN_DIR/records``) in input order through ``add`` and finishes with ``close``, which
returns what it wrote. Each file is written to a temporary name and renamed on ``close``, so
a reader never sees half a file and a failed pass leaves the previous file in place.

    sinks = {"shards": ShardSink(run_dir / "records", 1000),
             "parquet": ParquetSink(run_dir / "records.parquet")}
    written = feed(store.iter_records(), sinks)     # {"shards": [...], "parquet": 12}

A new output format is one class with ``add``/``close``/``abort`` here and one line where
the job's sinks are chosen (:func:`diffcap.io.outputs.run_sinks`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from diffcap.fsutil import temp_path
from diffcap.io.records import record_for_file
from diffcap.timeline import VideoRecord


class Sink(Protocol):
    """What the one pass over a run's records feeds."""

    def add(self, record: dict[str, Any]) -> None: ...

    def close(self) -> Any:
        """Finish the output (rename it into place); returns what was written."""

    def abort(self) -> None:
        """Drop what was written so far (the pass failed); the old output stays."""


def feed(records: Iterable[dict[str, Any]], sinks: Mapping[str, Sink]) -> dict[str, Any]:
    """Every record to every sink, in one pass; ``{name: what the sink wrote}``."""
    try:
        for record in records:
            for sink in sinks.values():
                sink.add(record)
    except BaseException:
        for sink in sinks.values():
            sink.abort()
        raise
    return {name: sink.close() for name, sink in sinks.items()}


class _AtomicLines:
    """Lines into ``path`` through a temporary file renamed into place on ``close``."""

    def __init__(self, path: Path) -> None:
        self.path, self.tmp = path, temp_path(path)
        self._fh = self.tmp.open("w", encoding="utf-8")
        self.count = 0

    def write(self, line: str) -> None:
        self._fh.write(line + "\n")
        self.count += 1

    def close(self) -> int:
        try:
            self._fh.close()
            os.replace(self.tmp, self.path)
        finally:
            self.tmp.unlink(missing_ok=True)
        return self.count

    def abort(self) -> None:
        self._fh.close()
        self.tmp.unlink(missing_ok=True)


class ShardSink:
    """``records/records-00000.jsonl`` shards of ``shard_size`` lines; shards left from an
    earlier, larger write are removed on ``close`` (they would duplicate records)."""

    def __init__(self, folder: Path, shard_size: int) -> None:
        self.folder, self.shard_size = folder, shard_size
        self.names: list[str] = []
        self._batch: list[str] = []

    def add(self, record: dict[str, Any]) -> None:
        self._batch.append(json.dumps(record, ensure_ascii=False))
        if len(self._batch) >= self.shard_size:
            self._flush()

    def _flush(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"records-{len(self.names):05d}.jsonl"
        out = _AtomicLines(self.folder / name)
        for line in self._batch:
            out.write(line)
        out.close()
        self.names.append(name)
        self._batch.clear()

    def close(self) -> list[str]:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._batch or not self.names:
            self._flush()
        for old in self.folder.glob("records-*.jsonl"):
            if old.name not in self.names:
                old.unlink()
        return self.names

    def abort(self) -> None:
        self._batch.clear()


class ParquetSink:
    """``records.parquet`` (:data:`diffcap.io.parquet.RECORD_SCHEMA`), a batch at a time."""

    def __init__(self, path: Path, batch_size: int = 1000) -> None:
        from diffcap.io.parquet import ParquetRecords  # lazy: pyarrow costs start-up

        self._writer = ParquetRecords(path, batch_size=batch_size)

    def add(self, record: dict[str, Any]) -> None:
        self._writer.add(record)

    def close(self) -> int:
        return self._writer.close()

    def abort(self) -> None:
        self._writer.abort()


class RecordsFileSink:
    """The records of ``ids`` (one invocation's inputs) in the order of ``ids``, keyframe
    paths relative to ``out``'s folder: the file ``diffcap caption --out x.jsonl`` writes.
    Records of other videos of the run are passed over."""

    def __init__(self, out: Path, records_dir: Path, ids: Iterable[str]) -> None:
        self.out, self.records_dir, self.ids = out, records_dir, ids
        self._wanted = set(ids)
        self._by_id: dict[str, dict[str, Any]] = {}

    def add(self, record: dict[str, Any]) -> None:
        if record["video_id"] in self._wanted:
            self._by_id[record["video_id"]] = record

    def close(self) -> int:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        lines = _AtomicLines(self.out)
        for vid in self._in_order():
            rec = VideoRecord.from_json(self._by_id[vid])
            line = record_for_file(rec, self.records_dir, self.out)
            lines.write(json.dumps(line, ensure_ascii=False))
        return lines.close()

    def _in_order(self) -> Iterator[str]:
        return (vid for vid in self.ids if vid in self._by_id)

    def abort(self) -> None:
        self._by_id.clear()
