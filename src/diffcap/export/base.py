"""Export options, results and the format registry.

Each format is one function ``write(source: RecordSource, out: Path, opts: ExportOptions)
-> ExportResult`` in its own module, registered by name in :data:`FORMATS` (imported lazily,
so ``--format jsonl`` never imports Pillow composites or a model backend).

    from diffcap.export import export, ExportOptions
    result = export("runs/demo", "llava", "train/llava.json", ExportOptions(tasks=("slide",)))
    print(result.line())    # "llava: 3 records -> 42 items, 40 images in train/llava.json ..."
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field
from tqdm.auto import tqdm

from diffcap.config import CaptionConfig, ExportConfig, KeyframeConfig, ModelConfig
from diffcap.config.export import ALL_TASKS, LLAVA_TASKS  # noqa: F401 (re-exported here)
from diffcap.errors import ConfigError, DiffcapError

logger = logging.getLogger(__name__)

#: format name -> "module:function" (relative to diffcap.export)
FORMATS: dict[str, str] = {
    "jsonl": "jsonl:write_jsonl",
    "sharegpt4video": "jsonl:write_sharegpt4video",
    "parquet": "parquet:export_parquet",
    "llava": "llava:write_llava",
    "grid": "grid:write_grid",
    "t2v": "t2v:write_t2v",
    "clips": "clips:write_clips",
    "llamafactory": "sft:write_llamafactory",
    "swift": "sft:write_swift",
    "qwenvl": "sft:write_qwenvl",
    "chapters": "chapters:write_chapters",
}
_CAPTION = CaptionConfig.model_fields
_MODEL = ModelConfig.model_fields


class ExportOptions(ExportConfig):
    """Settings for every format (each format reads the ones it needs): the ``export`` config
    section (:class:`~diffcap.config.ExportConfig`, the flags of ``diffcap export``) plus what
    an export takes from the run or the caller, with the run config's defaults."""

    model_config = ConfigDict(frozen=True)

    progress: bool = True
    prompt_preset: str = _CAPTION["prompt_preset"].default
    templates: dict[str, str] = Field(default_factory=dict)
    fast_max_side: int = _CAPTION["fast_max_side"].default
    image_max_side: int = _MODEL["image_max_side"].default
    jpeg_quality: int = KeyframeConfig.model_fields["jpeg_quality"].default
    # grid: the paper's 16 frames, 4x4
    grid_frames: int = 16
    # clips: the model that summarises each clip
    model: ModelConfig | None = None


@dataclass
class ExportResult:
    format: str
    out: Path
    records: int = 0  # records read
    items: int = 0  # rows / samples written
    images: int = 0  # image files written
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # video id -> why it was skipped
    notes: list[str] = field(default_factory=list)  # e.g. why a requested task has 0 items

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def fail(self, video_id: str, exc: DiffcapError) -> None:
        """Skip one record whose export failed (missing video, ...): the rest still export."""
        from diffcap.export.records import failure_reason  # lazy: start-up

        self.skip(failure_reason(exc))
        self.failed[video_id] = str(exc)
        logger.warning("skipped video '%s': %s", video_id, exc)

    @property
    def nothing_exported(self) -> bool:
        """Records were read but not one item could be written (the CLI then exits 1)."""
        return self.records > 0 and self.items == 0

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        parts = [f"{self.format}: {self.records} records -> {self.items} items"]
        if self.images:
            parts.append(f", {self.images} images")
        parts.append(f" in {self.out} ({self.seconds:.1f} s)")
        tasks = self.extra.get("tasks")
        if tasks:
            parts.append(" [" + ", ".join(f"{k} {v}" for k, v in tasks.items()) + "]")
        if self.skipped:
            parts.append("; skipped " + ", ".join(f"{n} {r}" for r, n in self.skipped.items()))
        parts.extend(f"; {note}" for note in self.notes)
        return "".join(parts)


def progress_bar(opts: ExportOptions, desc: str, total: int | None = None) -> Any:
    return tqdm(total=total, desc=desc, unit="video", disable=not opts.progress, leave=False)


def summarized(source: Iterable[Any], result: ExportResult, opts: ExportOptions) -> Iterator[Any]:
    """The records of ``source`` that have a whole-video caption, counted on ``result`` under a
    progress bar; the others are counted as skipped ("without a summary")."""
    with progress_bar(opts, result.format) as bar:
        for rec in source:
            result.records += 1
            bar.update()
            if rec.summary is None:
                result.skip("without a summary")
                continue
            yield rec


def format_names() -> list[str]:
    return list(FORMATS)


def get_writer(fmt: str) -> Callable[..., ExportResult]:
    target = FORMATS.get(fmt)
    if target is None:
        raise ConfigError(
            f"unknown export format '{fmt}'", hint=f"choose one of: {', '.join(FORMATS)}"
        )
    module, attr = target.split(":")
    return getattr(importlib.import_module(f"diffcap.export.{module}"), attr)


def export(
    source: str | Path, fmt: str, out: str | Path, opts: ExportOptions | None = None
) -> ExportResult:
    """Export the records of a run directory or records JSONL file to ``out`` as ``fmt``."""
    from diffcap.export.records import open_records  # lazy: start-up

    writer = get_writer(fmt)
    opts = opts or ExportOptions()
    bad = set(opts.tasks) - set(ALL_TASKS)
    if bad:
        raise ConfigError(
            f"unknown llava task(s) {sorted(bad)}", hint=f"choose from {','.join(ALL_TASKS)}"
        )
    src = open_records(source)
    out = Path(out).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result = writer(src, out, opts)
    result.seconds = time.perf_counter() - t0
    return result
