"""CachedBackend: replays from the run store, writes after success, enforces the cost cap."""

from __future__ import annotations

import asyncio

import pytest

from diffcap.errors import BudgetExceeded, RequestFailed
from diffcap.models.base import Backend, ImageInput, ModelRequest, ModelResponse
from diffcap.models.cached import CachedBackend
from diffcap.store import RunStore
from diffcap.timeline import Usage


class CountingBackend(Backend):
    """A real Backend subclass that answers from the prompt and counts its calls."""

    name = "counting"

    def __init__(self, fail: bool = False, cost: float = 0.0) -> None:
        self.model = "count-model"
        self.calls: list[str] = []
        self.fail = fail
        self.cost = cost

    async def agenerate(self, request: ModelRequest) -> ModelResponse:
        self.calls.append(request.prompt)
        await asyncio.sleep(0)
        if self.fail:
            raise RequestFailed("boom", retryable=False)
        usage = Usage(
            requests=1, prompt_tokens=len(request.prompt), completion_tokens=3, cost_usd=self.cost
        )
        return ModelResponse(f"answer to {request.prompt}", self.model, usage, "stop")


@pytest.fixture
def store(tmp_path):
    s = RunStore.open(tmp_path / "run.sqlite")
    yield s
    s.close()


def req(prompt: str, image: bytes = b"img") -> ModelRequest:
    return ModelRequest(model="count-model", prompt=prompt, images=(ImageInput(image),))


def test_miss_then_hit(store):
    inner = CountingBackend()
    backend = CachedBackend(inner, store)
    first = backend.generate(req("a"))
    again = backend.generate(req("a"))
    assert inner.calls == ["a"]
    assert not first.cached and again.cached
    assert again.text == first.text == "answer to a"
    assert again.usage.prompt_tokens == first.usage.prompt_tokens
    assert backend.stats.requests == 1 and backend.stats.cached_requests == 1
    # A different image is a different request.
    backend.generate(req("a", b"other"))
    assert inner.calls == ["a", "a"]


def test_cache_survives_reopen(tmp_path):
    s1 = RunStore.open(tmp_path / "run.sqlite")
    CachedBackend(CountingBackend(), s1).generate(req("x"))
    s1.close()
    s2 = RunStore.open(tmp_path / "run.sqlite")
    inner = CountingBackend()
    resp = CachedBackend(inner, s2).generate(req("x"))
    assert resp.cached and inner.calls == []
    s2.close()


def test_failure_not_cached(store):
    backend = CachedBackend(CountingBackend(fail=True), store)
    with pytest.raises(RequestFailed):
        backend.generate(req("a"))
    assert store.spend()["requests"] == 0


def test_budget_stops_new_requests_but_replays(store):
    """The cap is hard: a request is sent only if the spend so far plus its estimate (the
    costliest answer yet) stays within the cap."""
    inner = CountingBackend(cost=0.4)
    backend = CachedBackend(inner, store, max_cost_usd=1.0)
    backend.generate(req("a"))
    backend.generate(req("b"))
    with pytest.raises(BudgetExceeded) as exc:
        backend.generate(req("c"))  # 0.8 spent + ~0.4 would pass 1.0: not sent
    assert "--max-cost-usd" in str(exc.value)
    with pytest.raises(BudgetExceeded):
        backend.generate(req("d"))
    assert backend.generate(req("a")).cached  # replays stay free and allowed
    assert inner.calls == ["a", "b"]
    assert store.spend()["cost_usd"] <= 1.0
    # A higher cap on a later run goes on.
    assert not CachedBackend(inner, store, max_cost_usd=5.0).generate(req("d")).cached


def test_batch_sends_only_misses(store):
    inner = CountingBackend()
    backend = CachedBackend(inner, store)
    backend.generate(req("a"))
    out = asyncio.run(backend.agenerate_batch([req("a"), req("b"), req("c")]))
    assert [r.text for r in out] == ["answer to a", "answer to b", "answer to c"]
    assert [r.cached for r in out] == [True, False, False]
    assert inner.calls == ["a", "b", "c"]


def test_capabilities_pass_through(store):
    inner = CountingBackend()
    inner.supports_multi_image = False
    backend = CachedBackend(inner, store)
    assert backend.supports_multi_image is False
    assert backend.model == "count-model"


def test_wrapper_reports_inner_name(store):
    assert CachedBackend(CountingBackend(), store).name == "counting"


def test_identical_requests_in_flight_are_paid_once(tmp_path):
    """Duplicate videos send identical requests at the same time: one is sent and paid,
    the others replay its answer (the spend the cost cap sees is what was really paid)."""
    import asyncio

    from diffcap.config import ModelConfig
    from diffcap.models import get_backend
    from diffcap.models.base import ModelRequest
    from diffcap.models.cached import CachedBackend
    from diffcap.store import RunStore
    from support.fault_server import FaultServer

    with FaultServer(latency=0.2) as srv:
        store = RunStore.open(tmp_path / "run.sqlite")
        inner = get_backend("openai", ModelConfig(api_base=srv.base_url, model="m"))
        backend = CachedBackend(inner, store)
        req = ModelRequest(model="m", prompt="Describe the same frame.")

        async def go():
            try:
                return await asyncio.gather(*(backend.agenerate(req) for _ in range(6)))
            finally:
                await backend.aclose()

        answers = asyncio.run(go())
        assert len(srv.requests) == 1
        assert len({a.text for a in answers}) == 1
        assert sum(not a.cached for a in answers) == 1
        assert store.spend()["requests"] == 1 and store.replays() == 5
        store.close()
