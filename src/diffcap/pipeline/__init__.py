"""Runs: one pipeline (an ordered list of stages) under every command, run by a local or a
Ray executor over one run store.

from diffcap.pipeline import resolve_config, run_dataset, iter_records
cfg = resolve_config("fast-cheap", overrides={"model.api_base": "http://127.0.0.1:8000/v1"})
report = run_dataset(["videos/"], Path("runs/demo"), cfg)           # command="run"
print(report.format())
for record in iter_records("runs/demo"):
    record.video_id, record.summary
"""

from typing import TYPE_CHECKING, Any

from diffcap.config.resolve import list_presets, resolve_config, save_config
from diffcap.engine.control import RunControl
from diffcap.engine.executor import Executor
from diffcap.engine.pipeline import Pipeline, make_executor
from diffcap.engine.report import RunReport
from diffcap.engine.rows import VideoRow
from diffcap.engine.stage import BarrierStage, CpuStage, IoStage, Resources, Stage, StageWorker
from diffcap.errors import EXIT_BUDGET, EXIT_CODES
from diffcap.io.inputs import VideoItem, collect_inputs
from diffcap.io.outputs import iter_records, write_outputs
from diffcap.pipeline.runner import run_dataset
from diffcap.pipeline.status import format_status, run_status
from diffcap.stages.registry import build_stages, stage_names

if TYPE_CHECKING:
    from diffcap.io.parquet import RECORD_SCHEMA

__all__ = [
    "EXIT_BUDGET",
    "EXIT_CODES",
    "RECORD_SCHEMA",
    "BarrierStage",
    "CpuStage",
    "Executor",
    "IoStage",
    "Pipeline",
    "Resources",
    "RunControl",
    "RunReport",
    "Stage",
    "StageWorker",
    "VideoItem",
    "VideoRow",
    "build_stages",
    "collect_inputs",
    "format_status",
    "iter_records",
    "list_presets",
    "make_executor",
    "resolve_config",
    "run_dataset",
    "run_status",
    "save_config",
    "stage_names",
    "write_outputs",
]


def __getattr__(name: str) -> Any:
    # RECORD_SCHEMA on first use: it needs pyarrow, which a run imports only to write Parquet
    if name == "RECORD_SCHEMA":
        from diffcap.io.parquet import RECORD_SCHEMA  # lazy: start-up (pyarrow, issue 24)

        return RECORD_SCHEMA
    raise AttributeError(f"module 'diffcap.pipeline' has no attribute {name!r}")
