"""``diffcap export --format parquet``; the records' Parquet schema and writer are
:mod:`diffcap.io.parquet` (re-exported here for code written against this module)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from diffcap.export.base import ExportResult, progress_bar
from diffcap.export.jsonl import record_for_output
from diffcap.io.parquet import RECORD_SCHEMA, parquet_row, write_parquet

__all__ = ["RECORD_SCHEMA", "export_parquet", "parquet_row", "write_parquet"]


def export_parquet(source: Any, out: Path, opts: Any) -> Any:
    """``diffcap export --format parquet``: every record, keyframe paths relative to ``out``
    (or absolute with ``--absolute-paths``)."""
    result = ExportResult("parquet", out)
    with progress_bar(opts, "parquet") as bar:

        def rows() -> Any:
            for rec in source:
                result.records += 1
                bar.update()
                yield record_for_output(rec, out.parent, opts.absolute_paths)

        result.items = write_parquet(rows(), out)
    return result
