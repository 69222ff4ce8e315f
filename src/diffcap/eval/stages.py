"""The stages of an eval, under the engine's stage contract (``diffcap.engine.stage``):

    eval_inputs   decode the item's video into the input mode's images   Resources(cpus=0, io)
    eval_answer   model and judge calls, then the item's score            model

A row is one benchmark item (``row.video_id`` is the item id); what a stage makes travels in
``row.record`` and the answer stage leaves the item's prediction there, which the driver
commits to the run store as the item finishes. Every model and judge call goes through the
run store's request cache, so a rerun replays finished calls and pays only for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffcap.config import ModelConfig, RunConfig
from diffcap.engine.rows import VideoRow
from diffcap.engine.stage import CpuStage, IoStage, Resources, Stage
from diffcap.eval.base import BenchSettings, EvalContext, EvalItem
from diffcap.eval.inputs import input_times, load_images, preamble, video_image_files
from diffcap.eval.registry import get_benchmark
from diffcap.stages.model import cached_backend, gpus_of, preflight_model
from diffcap.store.cache import check_request_cache, open_request_cache
from diffcap.store.rundir import EVAL_DB_NAME, RunDir

__all__ = ["EvalAnswerStage", "EvalInputStage", "EvalJob", "replace_model"]


#: The eval directory's run store (results, and the request cache unless engine.cache_url).
EVAL_DB = EVAL_DB_NAME


@dataclass
class EvalJob:
    """Everything the stages need besides the run config (picklable)."""

    bench: str
    input_mode: str
    items: dict[str, EvalItem]
    #: item id -> video file (image input modes)
    videos: dict[str, str] = field(default_factory=dict)
    #: item id -> caption (caption input mode)
    captions: dict[str, str] = field(default_factory=dict)
    #: The model under test (None: not needed) and the judge (None: not needed).
    model: ModelConfig | None = None
    judge: ModelConfig | None = None
    n_frames: int = 16
    seed: int = 0
    #: Where the captions came from (the first record's provenance: model, mode, preset).
    caption_provenance: dict[str, Any] = field(default_factory=dict)
    #: The benchmark's settings (made on the driver; workers make the same benchmark).
    settings: BenchSettings = field(default_factory=BenchSettings)
    #: Where an official answer prefill goes ("assistant" or "user"; see EvalContext).
    prefill_mode: str = "user"


class _EvalStage(Stage):
    def __init__(self, cfg: RunConfig, run_dir: str | Path, job: EvalJob) -> None:
        super().__init__(cfg, run_dir)
        self.job = job

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "job": self.job}


class EvalInputStage(_EvalStage, CpuStage):
    """The input mode's images of the item's video, saved under ``OUT/inputs/``."""

    name = "eval_inputs"

    @property
    def resources(self) -> Resources:
        return Resources(cpus=0, concurrency=max(2, self.cfg.engine.workers))

    def check(self) -> None:
        if self.job.input_mode == "keyframes":
            from diffcap.embed.registry import check_image_embedder  # lazy: start-up

            check_image_embedder(self.cfg.keyframes.embedder)

    def setup(self, checked: Any = None) -> None:
        self.embedder = None
        if self.job.input_mode == "keyframes":  # loaded once, not per video
            from diffcap.embed import get_image_embedder  # lazy: start-up

            kcfg = self.cfg.keyframes
            self.embedder = get_image_embedder(kcfg.embedder, batch_size=kcfg.batch_size)

    def process_row(self, row: VideoRow) -> VideoRow:
        item = self.job.items[row.video_id]
        try:
            span = item.data.get("span")
            images = video_image_files(
                self.job.input_mode,
                Path(self.job.videos[row.video_id]),
                Path(self.run_dir),
                self.cfg,
                key=item.video,
                span=tuple(span) if span else None,
                n_frames=self.job.n_frames,
                embedder=self.embedder,
            )
        except Exception as exc:
            return row.fail(self.name, exc)
        row.artifacts["images"] = images
        return row


class EvalAnswerStage(_EvalStage, IoStage):
    """Model and judge calls for one item, then its prediction (the row's record)."""

    name = "eval_answer"

    @property
    def resources(self) -> Resources:
        # An in-process model on CUDA takes a GPU (on "auto" wants one), as the caption
        # stage's does.
        gpus, wants = gpus_of(self.cfg) if self.job.model is not None else (0.0, False)
        return Resources(cpus=0, gpus=gpus, concurrency=self.cfg.model.concurrency, wants_gpu=wants)

    def _configs(self) -> list[ModelConfig]:
        return [m for m in (self.job.model, self.job.judge) if m is not None]

    @property
    def uses_cache(self) -> bool:
        return True

    def check(self) -> str | None:
        """Pre-flight of the model and judge; returns the eval's id in a shared request
        cache (``engine.cache_url``), which workers need, as the caption stage's does."""

        for mcfg in self._configs():
            preflight_model(mcfg, self.cfg.engine, self.name)
        return check_request_cache(self.cfg.engine, RunDir(self.run_dir).eval_db)

    def setup(self, checked: Any = None) -> None:

        self.cache = open_request_cache(
            self.cfg.engine, self.run_dir, run_id=checked, db_name=EVAL_DB
        )
        engine = self.cfg.engine

        def cached(mcfg: ModelConfig | None) -> Any:
            return None if mcfg is None else cached_backend(mcfg, engine, self.cache)

        self.model, self.judge = cached(self.job.model), cached(self.job.judge)
        self.bench = get_benchmark(self.job.bench, self.job.settings)

    async def aprocess_row(self, row: VideoRow) -> VideoRow:
        job = self.job
        item = job.items[row.video_id]
        files = row.artifacts.get("images", ())
        images = load_images(files)
        ctx = EvalContext(
            model=self.model,
            judge=self.judge,
            images=images,
            caption=job.captions.get(row.video_id),
            input_mode=job.input_mode,
            preamble="" if self.bench.scores_captions else preamble(job.input_mode, len(images)),
            seed=job.seed,
            prefill_mode=job.prefill_mode,
            times=input_times(files),
        )
        try:
            pred = await self.bench.evaluate(item, ctx)
        except Exception as exc:
            return row.fail(self.name, exc)
        row.record = self._finish(item, pred)
        return row

    def _finish(self, item: EvalItem, pred: dict[str, Any]) -> dict[str, Any]:
        out = {"id": item.item_id, "video": item.video, "dims": item.dims, **pred}
        if self.model is not None:
            out["model"] = self.model.model
        if self.judge is not None:
            out["judge"] = self.judge.model
        return out

    async def aclose(self) -> None:
        for backend in (self.model, self.judge):
            if backend is not None:
                await backend.aclose()
        self.cache.close()


_KEEP: Any = object()


def replace_model(base: ModelConfig, *, api_key: Any = _KEEP, **changes: Any) -> ModelConfig:
    """``base`` with other settings (None values keep base's) at temperature 0: the judge,
    or the text model that answers from captions. ``api_key=None`` drops base's key (the
    backend then reads its environment variable): a key is never sent to another server."""
    data = base.model_dump()
    data["api_key"] = base.api_key if api_key is _KEEP else api_key
    data.update({k: v for k, v in changes.items() if v is not None})
    data["temperature"] = 0.0
    return ModelConfig.model_validate(data)
