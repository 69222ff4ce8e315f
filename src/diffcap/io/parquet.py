"""The one Parquet schema of records, and its writer (used by exports and by runs).

Nested keyframes and captions are typed lists of structs; free-form parts (provenance, any
other record keys) are JSON strings, so every file has the same declared schema whatever the
records hold, and Hugging Face ``datasets`` loads it directly.

    from diffcap.io.parquet import RECORD_SCHEMA, write_parquet
    write_parquet((rec.to_json() for rec in records), "records.parquet")
    datasets.load_dataset("parquet", data_files="records.parquet")["train"][0]["summary"]
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq

from diffcap.fsutil import temp_path

__all__ = ["RECORD_SCHEMA", "parquet_row", "write_parquet"]

#: A keyframe's measured camera motion (null where not measured; see docs/camera.md).
_CAMERA = pa.struct(
    [("label", pa.string()), ("magnitude", pa.string())]
    + [(k, pa.float64()) for k in ("pan", "tilt", "zoom", "roll", "shake")]
)
_KEYFRAME = pa.struct(
    [("idx", pa.int32()), ("time", pa.float64()), ("file", pa.string()), ("camera", _CAMERA)]
)
_CAPTION = pa.struct(
    [
        ("idx", pa.string()),
        ("content", pa.string()),
        ("time", pa.float64()),
        ("start", pa.float64()),
        ("end", pa.float64()),
    ]
)
_USAGE = pa.struct(
    [
        ("requests", pa.int64()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("cost_usd", pa.float64()),
    ]
)
#: The declared Parquet schema of records (nested JSON kept as strings where free-form).
RECORD_SCHEMA = pa.schema(
    [
        ("video_id", pa.string()),
        ("video_path", pa.string()),
        ("duration", pa.float64()),
        ("mode", pa.string()),
        ("keyframes", pa.list_(_KEYFRAME)),
        ("captions", pa.list_(_CAPTION)),
        ("summary", pa.string()),
        ("span_start", pa.float64()),
        ("span_end", pa.float64()),
        ("short_caption", pa.string()),
        ("usage", _USAGE),
        ("provenance", pa.string()),  # JSON
        ("extra", pa.string()),  # JSON of any other record keys
    ]
)
_BASE_KEYS = frozenset(
    {
        "video_id",
        "video_path",
        "duration",
        "mode",
        "keyframes",
        "captions",
        "usage",
        "provenance",
        "span",
        "short_caption",
    }
)


def parquet_row(rec: dict[str, Any]) -> dict[str, Any]:
    """One record (``VideoRecord.to_json()`` shape) -> one row of :data:`RECORD_SCHEMA`."""
    span = rec.get("span") or {}
    captions = rec.get("captions") or []
    summary = next((c["content"] for c in reversed(captions) if str(c.get("idx")) == "-1"), None)
    usage = rec.get("usage") or {}
    return {
        "video_id": rec["video_id"],
        "video_path": rec.get("video_path"),
        "duration": rec.get("duration"),
        "mode": rec.get("mode"),
        "keyframes": [
            {
                "idx": k.get("idx"),
                "time": k.get("time"),
                "file": k.get("file"),
                "camera": _camera(k),
            }
            for k in rec.get("keyframes") or []
        ],
        "captions": [
            {
                "idx": str(c.get("idx")),
                "content": c.get("content"),
                "time": c.get("time"),
                "start": c.get("start"),
                "end": c.get("end"),
            }
            for c in captions
        ],
        "summary": summary,
        "span_start": span.get("start"),
        "span_end": span.get("end"),
        "short_caption": rec.get("short_caption"),
        "usage": {
            k: usage.get(k, 0)
            for k in ("requests", "prompt_tokens", "completion_tokens", "cost_usd")
        },
        "provenance": json.dumps(rec.get("provenance") or {}, ensure_ascii=False),
        "extra": json.dumps(
            {k: v for k, v in rec.items() if k not in _BASE_KEYS}, ensure_ascii=False
        ),
    }


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows of :data:`RECORD_SCHEMA` as a table. Parsed as JSON lines by Arrow's reader:
    ``pa.Table.from_pylist`` gives the same table but imports pandas (any ``pa.array`` call
    does), which is most of the fixed cost of a one-video run. Rows JSON cannot carry (NaN,
    a float in an integer column) take ``from_pylist``."""
    if not rows:
        return pa.Table.from_batches([], schema=RECORD_SCHEMA)  # empty_table() imports pandas
    try:
        data = "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in rows)
        raw = data.encode()
        return pj.read_json(
            pa.BufferReader(raw),
            read_options=pj.ReadOptions(use_threads=False, block_size=len(raw) + 1),
            parse_options=pj.ParseOptions(
                explicit_schema=RECORD_SCHEMA, unexpected_field_behavior="error"
            ),
        ).select(RECORD_SCHEMA.names)
    except (ValueError, pa.ArrowInvalid):
        return pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)


def _camera(keyframe: dict[str, Any]) -> dict[str, Any] | None:
    cam = keyframe.get("camera")
    if not cam:
        return None
    return {k: cam.get(k) for k in ("label", "magnitude", "pan", "tilt", "zoom", "roll", "shake")}


class ParquetRecords:
    """Records (dicts) into ``path`` a batch at a time: a temporary file, renamed into place
    on ``close`` (an empty dataset still gets a file with the schema); memory holds one
    batch of rows, not the dataset."""

    def __init__(self, path: str | os.PathLike[str], *, batch_size: int = 1000) -> None:
        self.path, self.batch_size = Path(path), batch_size
        self.tmp = temp_path(self.path)
        self.count = 0
        self._rows: list[dict[str, Any]] = []
        self._writer = pq.ParquetWriter(self.tmp, RECORD_SCHEMA)

    def add(self, record: dict[str, Any]) -> None:
        self._rows.append(parquet_row(record))
        if len(self._rows) >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        self._writer.write_table(_table(self._rows))
        self.count += len(self._rows)
        self._rows.clear()

    def close(self) -> int:
        try:
            if self._rows or self.count == 0:
                self._flush()
            self._writer.close()
            os.replace(self.tmp, self.path)
        finally:
            self.tmp.unlink(missing_ok=True)
        return self.count

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def write_parquet(
    records: Iterable[dict[str, Any]],
    path: str | os.PathLike[str],
    *,
    batch_size: int = 1000,
    on_row: Callable[[], None] | None = None,
) -> int:
    """Write records (dicts) to ``path`` atomically (temp file + rename); returns the count.

    Memory holds one batch of rows, not the whole dataset. ``on_row`` is called per record
    (a progress bar's update).
    """
    out = ParquetRecords(path, batch_size=batch_size)
    try:
        for rec in records:
            out.add(rec)
            if on_row:
                on_row()
    except BaseException:
        out.abort()
        raise
    return out.close()
