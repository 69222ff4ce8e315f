"""Exports of the caption timeline for its consumers.

Formats (``diffcap export DIR --format F --out PATH``): ``jsonl`` (all records in one file),
``sharegpt4video`` (the 40K dataset's shape), ``parquet`` (declared schema, loads in
``datasets``), ``llava`` (captioner fine-tuning on the four tasks), ``grid``
(ShareGPT4Video-8B's 4x4 grid input), ``t2v`` (Open-Sora-Plan records), ``clips`` (implicit
clip captions by clip summary).

    from diffcap.export import ExportOptions, export
    print(export("runs/demo", "sharegpt4video", "out/sg4v.jsonl").line())
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from diffcap.lazyattr import lazy_attributes

if TYPE_CHECKING:
    from diffcap.export.base import FORMATS, LLAVA_TASKS, ExportOptions, ExportResult, export
    from diffcap.export.records import RecordSource, open_records

#: public name -> module that defines it, imported on first use (a run imports
#: ``diffcap.export.parquet`` alone, without the exporters and their dependencies)
_EXPORTS = {
    "FORMATS": "diffcap.export.base",
    "LLAVA_TASKS": "diffcap.export.base",
    "ExportOptions": "diffcap.export.base",
    "ExportResult": "diffcap.export.base",
    "export": "diffcap.export.base",
    "RecordSource": "diffcap.export.records",
    "open_records": "diffcap.export.records",
}

__all__ = [
    "FORMATS",
    "LLAVA_TASKS",
    "ExportOptions",
    "ExportResult",
    "RecordSource",
    "export",
    "open_records",
]


__getattr__ = lazy_attributes(__name__, _EXPORTS, globals())
