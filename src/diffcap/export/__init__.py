"""Exports of the caption timeline for its consumers.

Formats (``diffcap export DIR --format F --out PATH``): ``jsonl`` (all records in one file),
``sharegpt4video`` (the 40K dataset's shape), ``parquet`` (declared schema, loads in
``datasets``), ``llava`` (captioner fine-tuning on the four tasks), ``grid``
(ShareGPT4Video-8B's 4x4 grid input), ``t2v`` (Open-Sora-Plan records), ``clips`` (implicit
clip captions by clip summary).

    from diffcap.export import ExportOptions, export
    print(export("runs/demo", "sharegpt4video", "out/sg4v.jsonl").line())
"""

from diffcap.export.base import FORMATS, LLAVA_TASKS, ExportOptions, ExportResult, export
from diffcap.export.records import RecordSource, open_records

__all__ = [
    "FORMATS",
    "LLAVA_TASKS",
    "ExportOptions",
    "ExportResult",
    "RecordSource",
    "export",
    "open_records",
]
