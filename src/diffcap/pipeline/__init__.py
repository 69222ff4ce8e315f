"""Dataset runs: inputs, stages, the local engine (Ray in ``ray_runner``), outputs, reports.

from diffcap.pipeline import resolve_config, run_dataset, iter_records
cfg = resolve_config("fast-cheap", overrides={"model.api_base": "http://127.0.0.1:8000/v1"})
report = run_dataset(["videos/"], Path("runs/demo"), cfg)
print(report.format())
for record in iter_records("runs/demo"):
    record.video_id, record.summary
"""

from diffcap.export.parquet import RECORD_SCHEMA
from diffcap.pipeline.configure import list_presets, resolve_config, save_config
from diffcap.pipeline.inputs import VideoItem, collect_inputs
from diffcap.pipeline.outputs import iter_records, write_outputs
from diffcap.pipeline.report import RunReport, format_status, run_status
from diffcap.pipeline.rows import Row
from diffcap.pipeline.runner import EXIT_BUDGET, run_dataset
from diffcap.pipeline.stages import Stage, build_stages

__all__ = [
    "EXIT_BUDGET",
    "RECORD_SCHEMA",
    "Row",
    "RunReport",
    "Stage",
    "VideoItem",
    "build_stages",
    "collect_inputs",
    "format_status",
    "iter_records",
    "list_presets",
    "resolve_config",
    "run_dataset",
    "run_status",
    "save_config",
    "write_outputs",
]
