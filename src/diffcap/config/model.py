"""Run config section ``model``: the backend, its endpoint, limits and generation settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from diffcap.config.bounds import MAX_CONCURRENCY, Section


class ModelConfig(Section):
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
