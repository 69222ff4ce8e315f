"""The base of the stages that call a model: one backend per worker, behind the request
cache and the cost cap of the run store (the one place cost is accounted)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from diffcap.captioning.calls import generation_options
from diffcap.config import EngineConfig, ModelConfig
from diffcap.engine.stage import IoStage, Resources
from diffcap.models import get_backend
from diffcap.models.registry import resolve_backend_name
from diffcap.prompts import load_templates
from diffcap.store.cache import check_request_cache, open_request_cache
from diffcap.store.rundir import RunDir

if TYPE_CHECKING:
    from diffcap.models.base import Backend

log = logging.getLogger(__name__)

__all__ = ["ModelStage", "cached_backend", "gpus_of", "preflight_model"]


class ModelStage(IoStage):
    """Shared by the stages that call the model: one backend per worker, behind the request
    cache and the cost cap of the run store (the one place cost is accounted)."""

    uses_models = True

    @property
    def resources(self) -> Resources:
        gpus, wants = gpus_of(self.cfg)
        return Resources(cpus=0, gpus=gpus, concurrency=self.cfg.model.concurrency, wants_gpu=wants)

    @property
    def uses_cache(self) -> bool:
        """Requests go through the run's request cache (see ``diffcap.store.cache``)."""
        return True

    def check(self) -> str | None:
        """The model's pre-flight; then the run dir bound to its request cache (for
        PostgreSQL, one connection), whose run id every worker needs: workers may not read
        ``run.sqlite`` (it is the driver's). See :func:`diffcap.store.cache.check_request_cache`."""

        preflight_model(self.cfg.model, self.cfg.engine, self.name)
        if not self.uses_cache:
            return None
        return check_request_cache(self.cfg.engine, RunDir(self.run_dir).db)

    def setup(self, checked: Any = None) -> None:
        """``checked``: the run's id in the request cache (what ``check()`` returned)."""

        self.cache = open_request_cache(self.cfg.engine, self.run_dir, run_id=checked)
        self.backend: Backend = cached_backend(self.cfg.model, self.cfg.engine, self.cache)
        self.templates = load_templates(
            self.cfg.caption.prompt_preset, overrides=self.cfg.caption.templates or None
        )
        self._limiters: dict[int, asyncio.Semaphore] = {}

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
        await self.backend.aclose()
        self.cache.close()


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


def cached_backend(model: ModelConfig, engine: EngineConfig, cache: Any) -> Backend:
    """The backend of ``model`` behind the request cache ``cache`` and the cost cap of
    ``engine`` (every model and judge call of a stage goes through one of these)."""
    from diffcap.models.cached import CachedBackend  # lazy: start-up

    inner = get_backend(model.backend, model)
    warn_if_cap_counts_nothing(inner, engine)
    return CachedBackend(inner, cache, max_cost_usd=engine.max_cost_usd)


def warn_if_cap_counts_nothing(backend: Any, engine: EngineConfig) -> None:
    """A cost cap over a model nobody prices (in-process, or a local server of an unpriced
    model) would never stop the run: say so once, at set-up."""
    if engine.max_cost_usd is None:
        return
    prices = getattr(backend, "prices", None)
    priced = prices is not None and prices.lookup(backend.model) is not None
    if not priced:
        log.warning(
            "--max-cost-usd is set but %s model %r has no price: its requests count $0",
            backend.name,
            backend.model,
        )


def gpus_of(cfg: Any) -> tuple[float, bool]:
    """(GPUs, wants a GPU): an in-process model on CUDA takes a GPU, one on ``auto`` wants
    one where there is one; servers and CPU models take none."""

    m = cfg.model
    if resolve_backend_name(m) != "transformers":
        return 0.0, False
    device = (m.device or "auto").lower()
    return (1.0 if device.startswith("cuda") else 0.0), device == "auto"
