"""Run config section ``keyframes``: semantic-aware keyframe selection and saved images."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from diffcap.config.bounds import MIN_INTERVAL, Section

_RENAMED_KEYFRAMES = {
    "max_duration": "keyframes.max_duration was renamed keyframes.max_seconds (process only "
    "the first N seconds); filter.max_duration drops longer videos",
    "min_duration": "keyframes.min_duration moved to filter.min_duration (videos shorter "
    "than N seconds are filtered)",
}


class KeyframeConfig(Section):
    embedder: str = Field(
        "weightless", description="Keyframe embedder: weightless (offline), clip, clip:<dir>."
    )
    interval: float = Field(
        2.0,
        ge=MIN_INTERVAL,
        le=3600,
        description=f"Seconds between candidate frames (at least {MIN_INTERVAL:g}).",
    )
    threshold: float | None = Field(
        None,
        ge=-1.0,
        le=1.0,
        description="Keep a candidate when its cosine similarity to the last keyframe is "
        "below this [embedder default: weightless 0.85, clip 0.93].",
    )
    max_keyframes: int | None = Field(
        None, ge=1, le=100_000, description="Budget: keyframe 0 plus the N-1 most novel."
    )
    start: float | None = Field(None, ge=0, description="Window start (s).")
    end: float | None = Field(None, gt=0, description="Window end (s).")
    max_seconds: float | None = Field(
        None,
        gt=0,
        description="Process only the first N seconds from the start (the paper read 120); "
        "filter.max_duration drops long videos instead.",
    )
    skip_solid: bool = Field(True, description="Skip a leading solid-colour frame.")
    cut_keyframes: bool = Field(
        False, description="Also keep the first frame after every hard cut (TransNetV2)."
    )
    image_format: Literal["jpg", "png"] = Field("jpg", description="Keyframe image format.")
    max_side: int = Field(
        1024, ge=16, le=16384, description="Longest side of saved keyframes (never upscales)."
    )
    jpeg_quality: int = Field(90, ge=1, le=100, description="Keyframe JPEG quality.")
    batch_size: int = Field(16, ge=1, le=4096, description="Candidates embedded at once.")

    cut_candidates: bool = Field(
        True,
        description="Also offer frames where a cheap dense cut signal fires (every decoded "
        "frame, point-sampled) as candidates, compared with the last kept keyframe",
    )
    cut_threshold: float | None = Field(
        None,
        ge=-1.0,
        le=1.0,
        description="Keep a cut candidate when its similarity to the last kept keyframe is "
        "below this (default: the embedder's, 0.95 for weightless; never below --threshold)",
    )
    cut_scan_full: bool = Field(
        False,
        description="With cut candidates, never skip ahead to a codec keyframe: decode every "
        "reference frame, so even the shots shorter than --interval that the default pass "
        "cannot look into are found (slower)",
    )
    max_pixels: int | None = Field(
        40_000_000,
        ge=1,
        le=1_000_000_000,
        description="Refuse, with one line, a video whose frames have more pixels than this "
        "(bounds memory per worker; 8K is 35.4 M); none: no limit",
    )
    camera_motion: bool = Field(
        True,
        description="Measure the camera's motion (pan, tilt, zoom, roll, static, shake) per "
        "keyframe interval from codec motion vectors of the frames decoded anyway "
        "(docs/camera.md)",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for old, message in _RENAMED_KEYFRAMES.items():
                if old in data and data[old] is not None:
                    raise ValueError(message)
            # Configs saved by diffcap 0.1 carry the old keys unset: nothing to move.
            data = {k: v for k, v in data.items() if k not in _RENAMED_KEYFRAMES}
        return data

    @model_validator(mode="after")
    def _window(self) -> KeyframeConfig:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"end {self.end:g} is not after start {self.start:g}")
        return self
