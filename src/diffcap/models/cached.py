"""``CachedBackend``: a request cache in front of any :class:`~diffcap.models.base.Backend`.

Before calling the inner backend it looks the request up by
``request.cache_key(inner.name)`` in the run store; after each success it writes the response
(text + usage + estimated cost) at once, so a rerun replays finished model calls instead of
paying for them again. An optional cost cap stops *new* requests (replays stay free); it
is kept hard by reserving each request's estimated cost before it is sent (see
:meth:`CachedBackend.estimate`). The key holds the model's identity (a local model folder's
fingerprint; the identity a server lists for the model it serves, :mod:`diffcap.models.identity`):
retrained or swapped weights never replay old answers.
Answers are redacted (:mod:`diffcap.redact`) before they are stored or returned, and their
usage figures checked (a negative or non-finite cost is a server fault, never spend).

    backend = CachedBackend(get_backend("openai", cfg.model), store, max_cost_usd=5.0)
    resp = await backend.agenerate(request)     # resp.cached is True on a replay
    backend.stats.requests, backend.stats.cached_requests, backend.stats.cost_usd
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

from diffcap.errors import BudgetExceeded, RequestFailed, RunStopped
from diffcap.models.base import Backend, ModelRequest, ModelResponse
from diffcap.models.identity import model_fingerprint
from diffcap.redact import Redactor, register_secret, register_url_secrets
from diffcap.shutdown import request_in_flight, stop_cause, stop_requested
from diffcap.store.cache import RequestCacheStore
from diffcap.store.requests import CachedResponse
from diffcap.timeline import Usage

log = logging.getLogger(__name__)


class CachedBackend(Backend):
    """Wraps ``inner``; same capabilities, responses replayed from ``store`` (any
    :class:`~diffcap.store.cache.RequestCacheStore`: the run's SQLite, PostgreSQL) when known."""

    name = "cached"
    #: Seconds between re-reads of the run's total spend (for the cost cap).
    REFRESH_S = 2.0

    def __init__(
        self,
        inner: Backend,
        store: RequestCacheStore,
        *,
        max_cost_usd: float | None = None,
    ) -> None:
        self.inner = inner
        self.store = store
        self.max_cost_usd = max_cost_usd
        self.model = inner.model
        # Records' provenance names the real backend, not this wrapper.
        self.name = inner.name
        # Instance attributes shadow the class defaults so callers see the inner capabilities.
        self.supports_multi_image = inner.supports_multi_image
        self.supports_batching = inner.supports_batching
        #: This process's traffic: new requests (paid) and replays (cached_requests).
        self.stats = Usage()
        self._stopped = False
        self._spent_base: float | None = None
        self._spent_at = 0.0
        self._spent_since = 0.0
        #: event loop id -> {cache key: future done when its one request has finished}
        self._flights: dict[int, dict[str, asyncio.Future[None]]] = {}
        #: Estimated cost of this process's requests in flight, and the costliest answer yet.
        self._reserved = 0.0
        self._costliest = 0.0
        self._identities: dict[str, str | None] = {}
        self._redactor = Redactor(_secrets_of(inner))

    def key(self, request: ModelRequest) -> str:
        """The request's cache key: backend, request and the model's identity."""
        model = request.model or self.model
        if model not in self._identities:
            served = getattr(self.inner, "served_identity", None)
            parts = [model_fingerprint(model), served(model) if served else None]
            self._identities[model] = "+".join(p for p in parts if p) or None
        return request.cache_key(self.inner.name, self._identities[model])

    @property
    def backend_name(self) -> str:
        return self.inner.name

    @property
    def budget_exhausted(self) -> bool:
        """True once the run dir's total estimated spend reached the cap."""
        if self._stopped:
            return True
        if self.max_cost_usd is None:
            return False
        now = time.monotonic()
        # The DB total (all processes and earlier runs) is re-read at most every
        # REFRESH_S; in between, this process's own new spend is added to it, so the check
        # stays O(1) per request on runs with millions of cached responses.
        if self._spent_base is None or now - self._spent_at > self.REFRESH_S:
            self._spent_base = float(self.store.spend()["cost_usd"])
            self._spent_at = now
            self._spent_since = 0.0
        if self._spent_base + self._spent_since >= self.max_cost_usd:
            self._stopped = True
        return self._stopped

    def estimate(self, request: ModelRequest) -> float:
        """What ``request`` may cost, reserved against the cap while it is in flight: the
        larger of the costliest answer so far and a price-table estimate (the prompt's text at
        ~4 characters a token plus ``max_tokens`` of answer; images are not counted, the
        costliest answer so far covers them after the first one)."""
        prices = getattr(self.inner, "prices", None)
        price = prices.lookup(request.model or self.model) if prices is not None else None
        if price is None:
            return self._costliest
        opts = request.options_dict
        max_tokens = opts.get("max_tokens") or getattr(
            getattr(self.inner, "cfg", None), "max_tokens", 0
        )
        chars = len(request.prompt) + len(request.system or "")
        cost: float = price.cost(chars // 4, int(max_tokens or 0))
        return max(self._costliest, cost)

    def _reserve(self, request: ModelRequest) -> float:
        """Reserve ``request``'s estimate, or raise BudgetExceeded when the spend so far, the
        requests in flight and this one together could pass the cap."""
        if self.max_cost_usd is None:
            return 0.0
        estimate = self.estimate(request)
        exhausted = self.budget_exhausted  # refreshes the spend figures
        spent = (self._spent_base or 0.0) + self._spent_since
        if exhausted or spent + self._reserved + estimate > self.max_cost_usd:
            if not self._reserved:  # nothing in flight to come back under the cap
                self._stopped = True
            raise BudgetExceeded(
                f"estimated cost would pass the cap of ${self.max_cost_usd:.4f} (spent "
                f"${spent:.4f}, in flight ${self._reserved:.4f}, next ~${estimate:.4f}); "
                "no new model requests are sent",
                hint="rerun the same command with a higher --max-cost-usd to go on",
            )
        self._reserved += estimate
        return estimate

    def _reserve_all(self, requests: list[ModelRequest]) -> float:
        """Reserve every request of a batch before any is sent; when one would pass the cap,
        none is reserved (the batch is sent whole or not at all) and BudgetExceeded raised."""
        total = 0.0
        try:
            for request in requests:
                total += self._reserve(request)
        except BudgetExceeded:
            self._reserved -= total
            raise
        return total

    def __getattr__(self, item: str) -> Any:
        # Backend-specific helpers (e.g. a processor for token counting) pass through.
        if item in {"inner", "store"}:
            raise AttributeError(item)
        return getattr(self.inner, item)

    def context_window(self) -> Any:
        return self.inner.context_window()

    def token_counter(self) -> Any:
        return self.inner.token_counter()

    def image_token_cost(self) -> int | None:
        return self.inner.image_token_cost()

    async def agenerate(self, request: ModelRequest) -> ModelResponse:
        key = self.key(request)
        hit = self.store.cached_response(key)
        if hit is not None:
            return self._replay(hit)
        # Single flight: identical requests in flight at once (duplicate videos in a
        # dataset) are sent and paid once; the others wait and replay the answer.
        loop = asyncio.get_running_loop()
        flights = self._flights.setdefault(id(loop), {})
        while (pending := flights.get(key)) is not None:
            await asyncio.shield(pending)
            hit = self.store.cached_response(key)
            if hit is not None:
                return self._replay(hit)
        mine: asyncio.Future[None] = loop.create_future()
        flights[key] = mine
        try:
            return await self._send(key, request)
        finally:
            if flights.get(key) is mine:
                del flights[key]
            mine.set_result(None)

    @staticmethod
    def _refuse_when_stopping() -> None:
        if stop_requested():  # SIGTERM, Ctrl-C: answers in flight finish, nothing new is sent
            cause = stop_cause() or "terminated"
            by = "Ctrl-C" if cause == "interrupted" else "SIGTERM"
            raise RunStopped(cause, f"stopped by {by} before this request was sent", hint="rerun")

    async def _send(self, key: str, request: ModelRequest) -> ModelResponse:
        self._refuse_when_stopping()
        reserved = self._reserve(request)
        try:
            with request_in_flight():
                response = await self.inner.agenerate(request)
        finally:
            self._reserved -= reserved
        return self._remember(key, response)

    def _replay(self, hit: CachedResponse) -> ModelResponse:
        self.stats.add(Usage(cached_requests=1))
        self.store.count_replay()
        usage = Usage(
            requests=1,
            prompt_tokens=hit.prompt_tokens,
            completion_tokens=hit.completion_tokens,
            cost_usd=hit.cost_usd,
            cached_requests=1,
        )
        return ModelResponse(hit.text, hit.model, usage, hit.finish_reason, cached=True)

    def _remember(self, key: str, response: ModelResponse) -> ModelResponse:
        u = response.usage
        cost = u.cost_usd  # the backend prices its own answers (the one place cost is set)
        _check_usage(u.prompt_tokens, u.completion_tokens, cost)
        text = self._redactor.text(response.text)  # an answer that echoes a key
        self._costliest = max(self._costliest, cost)
        self.store.put_response(
            key,
            self.inner.name,
            CachedResponse(
                text=text,
                model=response.model or self.model,
                finish_reason=response.finish_reason,
                prompt_tokens=u.prompt_tokens,
                completion_tokens=u.completion_tokens,
                cost_usd=cost,
            ),
        )
        usage = Usage(
            requests=1,
            prompt_tokens=u.prompt_tokens,
            completion_tokens=u.completion_tokens,
            cost_usd=cost,
        )
        self.stats.add(usage)
        self._spent_since += cost
        return ModelResponse(text, response.model, usage, response.finish_reason)

    async def agenerate_batch(self, requests: Any) -> list[ModelResponse]:
        """Replays hits; sends only the misses to the inner backend (natively batched)."""
        reqs = list(requests)
        keys = [self.key(r) for r in reqs]
        out: list[ModelResponse | None] = []
        for key in keys:
            hit = self.store.cached_response(key)
            out.append(self._replay(hit) if hit is not None else None)
        misses = [i for i, r in enumerate(out) if r is None]
        if misses:
            self._refuse_when_stopping()
            batch = [reqs[i] for i in misses]
            reserved = self._reserve_all(batch)  # the cap stays hard: all or none is sent
            try:
                with request_in_flight(len(batch)):
                    fresh = await self.inner.agenerate_batch(batch)
            finally:
                self._reserved -= reserved
            for i, resp in zip(misses, fresh, strict=True):
                out[i] = self._remember(keys[i], resp)
        return [r for r in out if r is not None]

    async def aclose(self) -> None:
        await self.inner.aclose()


def _secrets_of(inner: Backend) -> list[str]:
    """The inner backend's own credentials (its key, its URL's user info): in a Ray actor or
    any process where the CLI did not register them, answers that echo them are still
    redacted."""
    cfg = getattr(inner, "cfg", None)
    key, base = getattr(cfg, "api_key", None), getattr(cfg, "api_base", None)
    register_secret(key)
    register_url_secrets(base)
    return [key] if key else []


def _check_usage(prompt_tokens: int, completion_tokens: int, cost: float) -> None:
    """Usage that no real answer has (negative or non-finite) is a fault of the server
    (retryable), never spend: a negative cost would lower the run's total under the cap."""
    if not (prompt_tokens >= 0 and completion_tokens >= 0 and math.isfinite(cost) and cost >= 0):
        raise RequestFailed(
            f"the server reported impossible usage ({prompt_tokens} prompt tokens, "
            f"{completion_tokens} completion tokens, ${cost})",
            retryable=True,
            hint="a server fault: check the server's usage figures",
        )
