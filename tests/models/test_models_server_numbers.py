"""Numbers from the server are checked (issue 22, item 6): impossible token counts are a
server fault, never a negative cost or a bare OverflowError; the cost cap is hard."""

from __future__ import annotations

import asyncio
import math

import pytest

from diffcap.errors import BudgetExceeded, RequestFailed
from diffcap.models import ModelRequest, get_backend
from diffcap.models.cached import CachedBackend
from diffcap.models.retry import RetryPolicy
from diffcap.store import RunStore

FAST = RetryPolicy(max_retries=1, base_s=0.01, max_backoff_s=0.02)
#: USD per million tokens: one prompt word costs $0.01, so every answer costs cents.
PRICES = {"fault-model": {"input": 10_000.0, "output": 10_000.0}}


def make(server, **cfg):
    return get_backend(
        "openai",
        api_base=server.base_url,
        model="fault-model",
        retry=FAST,
        timeout_s=5.0,
        prices=PRICES,
        **cfg,
    )


def req(prompt: str) -> ModelRequest:
    return ModelRequest(model="fault-model", prompt=prompt)


@pytest.mark.parametrize(
    "bad",
    [-12_000_000, float("inf"), float("-inf"), float("nan"), 10**15, "-5"],
    ids=["negative", "inf", "-inf", "nan", "absurd", "negative-string"],
)
def test_impossible_token_counts_are_a_server_fault(fault_server, bad):
    fault_server.usage = lambda u: {**u, "prompt_tokens": bad}
    backend = make(fault_server)
    with pytest.raises(RequestFailed) as err:
        backend.generate(req("describe the frame"))
    assert err.value.retryable  # a fault of the server: the video is deferred, not failed
    assert "invalid token count" in str(err.value)
    assert len(fault_server.requests) == 2  # retried like any server fault


def test_a_server_fault_in_usage_is_never_stored_as_spend(fault_server, tmp_path):
    fault_server.usage = lambda u: {**u, "completion_tokens": -1_000_000}
    store = RunStore.open(tmp_path / "run.sqlite")
    backend = CachedBackend(make(fault_server), store)
    with pytest.raises(RequestFailed):
        backend.generate(req("describe"))
    fault_server.usage = None
    backend.generate(req("describe again"))
    spend = store.spend()
    assert spend["requests"] == 1 and spend["cost_usd"] > 0
    assert math.isfinite(spend["cost_usd"])
    store.close()


def test_missing_or_odd_usage_still_counts_as_zero(fault_server):
    fault_server.usage = lambda u: {"prompt_tokens": None, "completion_tokens": "n/a"}
    resp = make(fault_server).generate(req("hello"))
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (0, 0)


def test_the_cost_cap_is_hard_with_many_requests_in_flight(fault_server, tmp_path):
    """Eight requests at once against a cap that holds two answers (~$0.17 each): on a soft
    cap every one of them is sent (nothing was spent when they started) and the run pays
    ~$1.36; with reservations no more is sent than fits under the cap."""
    fault_server.latency = 0.3
    store = RunStore.open(tmp_path / "run.sqlite")
    inner = make(fault_server, concurrency=8, max_tokens=10)
    backend = CachedBackend(inner, store, max_cost_usd=0.45)
    prompts = [f"request number {i} with a few more words" for i in range(8)]

    async def go():
        return await asyncio.gather(
            *(backend.agenerate(req(p)) for p in prompts), return_exceptions=True
        )

    results = asyncio.run(go())
    sent = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BudgetExceeded)]
    assert sent and refused and len(sent) + len(refused) == 8
    paid = store.spend()["cost_usd"]
    assert paid <= 0.45, f"paid ${paid:.4f} over a $0.45 cap"
    assert len(fault_server.answered) == len(sent)
    store.close()


def test_the_cost_cap_is_hard_for_a_batch(fault_server, tmp_path):
    """``agenerate_batch`` reserves every request's estimate before it sends any: a batch that
    could pass the cap is not sent at all (on a soft cap all eight were sent and paid ~$1.36
    against $0.45); one that fits is sent and paid within the cap."""
    store = RunStore.open(tmp_path / "run.sqlite")
    backend = CachedBackend(
        make(fault_server, concurrency=8, max_tokens=10), store, max_cost_usd=0.45
    )
    prompts = [f"request number {i} with a few more words" for i in range(8)]
    with pytest.raises(BudgetExceeded, match="would pass the cap"):
        asyncio.run(backend.agenerate_batch([req(p) for p in prompts]))
    assert not fault_server.requests and store.spend()["cost_usd"] == 0
    out = asyncio.run(backend.agenerate_batch([req(p) for p in prompts[:2]]))
    assert len(out) == 2 and len(fault_server.answered) == 2
    paid = store.spend()["cost_usd"]
    assert 0 < paid <= 0.45, f"paid ${paid:.4f} over a $0.45 cap"
    with pytest.raises(BudgetExceeded):  # a third answer would pass the cap: not sent
        asyncio.run(backend.agenerate_batch([req(p) for p in prompts[2:4]]))
    assert len(fault_server.requests) == 2 and store.spend()["cost_usd"] == paid
    store.close()
