"""Run config sections ``caption``, ``summary``, ``output`` and ``engine``, and
:class:`RunConfig`, the whole run config (every section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from diffcap.config.bounds import MAX_WORKERS, Section
from diffcap.config.inputs import FilterConfig, InputConfig
from diffcap.config.keyframes import KeyframeConfig
from diffcap.config.model import ModelConfig


class CaptionConfig(Section):
    mode: Literal["slide", "fast"] = Field(
        "slide", description="slide (differential sliding window) or fast (one grid)."
    )
    prompt_preset: str = Field("diffcap", description="Template preset: diffcap or sharecaptioner.")
    templates: dict[str, str] = Field(
        default_factory=dict, description="Template name -> file path overrides."
    )
    pair_layout: Literal["auto", "two_images", "composite"] = Field(
        "auto", description="How slide mode shows a frame pair."
    )
    fast_layout: Literal["grid", "strip"] = Field("grid", description="Fast mode tiling.")
    fast_max_frames: int = Field(30, ge=1, le=1024, description="Fast mode: frames tiled.")
    fast_max_side: int = Field(
        2048, ge=64, le=16384, description="Fast mode: longest side of the tiled image."
    )
    chain: Literal["auto", "single", "segments"] = Field(
        "auto",
        description="Slide mode: one DiffSW chain (the paper), parallel segments joined by "
        "bridge calls, or auto (segments above segment_after_s).",
    )
    segment_after_s: float = Field(
        300.0,
        gt=0,
        le=1e9,
        description="chain=auto: videos (or windows) longer than this many seconds are "
        "captioned as parallel segments.",
    )
    segment_keyframes: int = Field(
        32,
        ge=2,
        le=100_000,
        description="Parallel segments: about this many keyframes per segment (cut at the "
        "largest visual breaks).",
    )
    camera_facts: bool = Field(
        True,
        description="State the measured camera motion (keyframes.camera_motion) as a fact in "
        "the differential and summary prompts of templates that use {camera} (diffcap's do; "
        "the released sharecaptioner format does not)",
    )


class SummaryConfig(Section):
    enabled: bool = Field(True, description="Summarise the differential captions.")
    model: str | None = Field(None, description="Model for the summary [the caption model].")


class OutputConfig(Section):
    shard_size: int = Field(1000, ge=1, le=10_000_000, description="Records per JSONL shard.")
    parquet: bool = Field(True, description="Also write records.parquet.")
    uri: str | None = Field(
        None,
        description="Also publish the records, Parquet and failure files to this local "
        "path or fsspec URL (s3://, gs://, ...), with a _manifest.json written last.",
    )


class EngineConfig(Section):
    engine: Literal["local", "ray"] = Field("local", description="Executor: local or ray.")
    ray_address: str | None = Field(None, description="Ray cluster address [a local Ray].")
    workers: int = Field(
        2,
        ge=1,
        le=MAX_WORKERS,
        description="Worker processes for CPU stages such as keyframe extraction "
        "(1, or a run of one video: a thread in the main process).",
    )
    max_cost_usd: float | None = Field(
        None, ge=0, description="Stop sending new model requests at this estimated spend."
    )
    max_consecutive_faults: int = Field(
        3,
        ge=1,
        le=100_000,
        description="Stop the run after this many videos in a row hit a fault of the world "
        "(endpoint down, disk full, permission denied); nothing is marked failed.",
    )
    model_actors: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="Ray: actors per model stage [in-process on GPUs: one per GPU of the "
        "cluster; servers and APIs: one per node].",
    )
    ray_max_retries: int = Field(
        3,
        ge=0,
        le=100,
        description="Ray: retries of a batch whose worker died (a lost node, a crash) "
        "before its videos are tried alone (see engine.max_worker_deaths).",
    )
    max_worker_deaths: int = Field(
        2,
        ge=1,
        le=100,
        description="Ray: a video whose worker process died this many times while it ran "
        "alone (a decoder crash, the OOM killer) is failed (--retry-failed retries it).",
    )
    ray_stall_s: float = Field(
        1800.0,
        gt=0,
        le=7 * 86400,
        description="Ray: seconds without a video coming back before the videos not back "
        "are tried alone; also the limit for one video tried alone.",
    )
    ray_rows_per_block: int = Field(
        1,
        ge=1,
        le=100_000,
        description="Ray: videos per Ray Data block (1 spreads work best; raise for "
        "millions of short items).",
    )
    cache_url: str | None = Field(
        None,
        description="Where the request cache lives: unset = the run's SQLite file; "
        "postgresql://user@host:port/db = a PostgreSQL server every node can reach (a "
        "cluster); the password comes from the URL or PGPASSWORD/~/.pgpass.",
    )

    @field_validator("cache_url")
    @classmethod
    def _cache_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("expected postgresql://user@host:port/dbname (or unset for SQLite)")
        return value


class RunConfig(Section):
    input: InputConfig = Field(default_factory=InputConfig)
    filter: FilterConfig = Field(default_factory=FilterConfig)
    keyframes: KeyframeConfig = Field(default_factory=KeyframeConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    caption: CaptionConfig = Field(default_factory=CaptionConfig)
    summary: SummaryConfig = Field(default_factory=SummaryConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
