"""The openai backend against the loopback fault server: retries, timeouts, payloads, usage."""

from __future__ import annotations

import asyncio
import base64
import time

import pytest

from diffcap.errors import RequestFailed
from diffcap.models import ImageInput, ModelRequest, get_backend
from diffcap.models.retry import RetryPolicy, retry_after_seconds
from diffcap.timeline import Usage

FAST = RetryPolicy(max_retries=3, base_s=0.01, max_backoff_s=0.05)


def make(server, *, retry=FAST, **cfg):
    cfg.setdefault("timeout_s", 2.0)
    return get_backend("openai", api_base=server.base_url, model="fault-model", retry=retry, **cfg)


def req(prompt="Describe the frame.", images=(), **options):
    return ModelRequest(
        model="fault-model",
        prompt=prompt,
        images=tuple(images),
        options=ModelRequest.make_options(options),
    )


@pytest.mark.parametrize("kind", ["rate_limit", "server_error", "drop", "malformed", "stall"])
def test_each_fault_recovers(fault_server, kind):
    backend = make(fault_server, timeout_s=0.5)
    fault_server.fail(kind, retry_after=0.05, stall_s=5.0)
    resp = backend.generate(req("hello world"))
    assert resp.text == "ok: hello world"
    assert [r.fault for r in fault_server.requests] == [kind, None]


def test_retries_are_bounded_and_the_reason_is_kept(fault_server):
    backend = make(fault_server, retry=RetryPolicy(max_retries=2, base_s=0.01))
    fault_server.fail("server_error", at=list(range(10)))
    with pytest.raises(RequestFailed) as err:
        backend.generate(req())
    assert len(fault_server.requests) == 3  # 1 try + max_retries
    assert "gave up after 3 attempt(s)" in str(err.value) and "HTTP 500" in str(err.value)
    assert err.value.status == 500


def test_max_retries_from_config(fault_server):
    backend = get_backend("openai", api_base=fault_server.base_url, max_retries=1, timeout_s=2.0)
    backend.retry.base_s = 0.01
    fault_server.fail("server_error", at=[0, 1, 2])
    with pytest.raises(RequestFailed, match="HTTP 500"):
        backend.generate(req())
    assert len(fault_server.requests) == 2


def test_retry_after_is_honoured(fault_server):
    backend = make(fault_server)  # backoff alone would wait <= 0.01 s
    fault_server.fail("rate_limit", retry_after=0.6)
    backend.generate(req())
    first, second = fault_server.requests
    assert second.at - first.at >= 0.5  # roughly the 0.6 s asked for


def test_retry_after_is_capped(fault_server):
    policy = RetryPolicy(max_retries=1, base_s=0.01, max_retry_after_s=0.1)
    backend = make(fault_server, retry=policy)
    fault_server.fail("rate_limit", retry_after=3600)
    start = time.monotonic()
    backend.generate(req())
    assert time.monotonic() - start < 30


def test_retry_after_header_forms():
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


@pytest.mark.parametrize(
    "status, hint",
    [(400, "model name"), (401, "API key"), (403, "not allowed"), (404, "--api-base")],
)
def test_client_errors_are_not_retried(fault_server, status, hint):
    backend = make(fault_server)
    fault_server.fail("status", status=status)
    with pytest.raises(RequestFailed) as err:
        backend.generate(req())
    assert len(fault_server.requests) == 1
    assert err.value.retryable is False and err.value.status == status
    assert f"HTTP {status}" in str(err.value) and hint in str(err.value)


@pytest.mark.parametrize("kind, reason", [("empty", "empty content"), ("refusal", "refused")])
def test_empty_and_refused_answers_fail_without_retry(fault_server, kind, reason):
    backend = make(fault_server)
    fault_server.fail(kind)
    with pytest.raises(RequestFailed, match=reason) as err:
        backend.generate(req())
    assert err.value.retryable is False and len(fault_server.requests) == 1


def test_payload_images_detail_system_and_options(fault_server):
    backend = make(fault_server, detail="low", max_tokens=77)
    a, b = ImageInput(b"\xff\xd8jpeg-a"), ImageInput(b"\x89PNG-b", mime="image/png")
    request = ModelRequest(
        model="fault-model",
        prompt="Compare.",
        images=(a, b),
        system="Be precise.",
        options=ModelRequest.make_options({"temperature": 0.2}),
    )
    backend.generate(request)
    body = fault_server.requests[0].body
    assert body["model"] == "fault-model" and body["max_tokens"] == 77
    assert body["temperature"] == 0.2
    system, user = body["messages"]
    assert system == {"role": "system", "content": "Be precise."}
    first, second, text = user["content"]  # images in order, then the text
    assert (
        first["image_url"]["url"] == "data:image/jpeg;base64," + base64.b64encode(a.data).decode()
    )
    assert second["image_url"]["url"].startswith("data:image/png;base64,")
    assert first["image_url"]["detail"] == "low"
    assert text == {"type": "text", "text": "Compare."}
    assert fault_server.requests[0].images == 2


def test_text_only_is_a_plain_string_and_options_override_config(fault_server):
    backend = make(fault_server, max_tokens=10)
    backend.generate(req("Summarize.", max_tokens=20))
    assert fault_server.requests[0].body["messages"] == [{"role": "user", "content": "Summarize."}]
    assert fault_server.requests[0].body["max_tokens"] == 20


def test_each_image_is_base64_encoded_once(fault_server, monkeypatch):
    from diffcap.models import openai_body

    calls = []
    real = openai_body.base64.b64encode
    monkeypatch.setattr(
        openai_body.base64, "b64encode", lambda data: calls.append(len(data)) or real(data)
    )
    backend = make(fault_server)
    shared, other = ImageInput(b"frame-1" * 100), ImageInput(b"frame-2" * 100)
    backend.generate(req(images=[shared]))
    backend.generate(req(images=[shared, other]))
    assert calls == [700, 700]  # shared once, other once
    urls = [r.body["messages"][0]["content"][0]["image_url"]["url"] for r in fault_server.requests]
    assert urls[0] == urls[1]


def test_usage_and_cost_accumulate(fault_server):
    backend = make(fault_server, prices={"fault-model": {"input": 1.0, "output": 2.0}})
    total = Usage()

    async def run():
        return await backend.agenerate_batch([req(f"one two three {i}") for i in range(5)])

    for resp in asyncio.run(run()):
        total.add(resp.usage)
    # the server counts words: 4 prompt words, answer "ok: one two three N" = 5 words
    assert (total.requests, total.prompt_tokens, total.completion_tokens) == (5, 20, 25)
    assert total.cost_usd == pytest.approx((20 * 1.0 + 25 * 2.0) / 1e6)


def test_concurrency_is_bounded(fault_server):
    fault_server.latency = 0.1
    backend = make(fault_server, concurrency=3)

    async def run():
        return await backend.agenerate_batch([req(f"p{i}") for i in range(12)])

    assert len(asyncio.run(run())) == 12
    assert fault_server.max_in_flight == 3


def test_key_is_sent_but_never_shown(fault_server):
    secret = "sk-test-SECRET-42"
    backend = get_backend("openai", api_base=fault_server.base_url, api_key=secret, retry=FAST)
    fault_server.fail("status", status=401)
    with pytest.raises(RequestFailed) as err:
        backend.generate(req())
    assert fault_server.requests[0].headers["authorization"] == f"Bearer {secret}"
    assert secret not in str(err.value) and secret not in repr(backend)


def test_local_server_without_key_gets_a_placeholder(fault_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    backend = make(fault_server)
    backend.generate(req())
    assert fault_server.requests[0].headers["authorization"] == "Bearer not-needed"


def test_one_failed_request_does_not_fail_the_others(fault_server):
    backend = make(fault_server)
    fault_server.fail("status", status=400, when="bad")

    async def run():
        return await asyncio.gather(
            backend.agenerate(req("good 1")),
            backend.agenerate(req("bad 2")),
            backend.agenerate(req("good 3")),
            return_exceptions=True,
        )

    good1, bad, good3 = asyncio.run(run())
    assert good1.text == "ok: good 1" and good3.text == "ok: good 3"
    assert isinstance(bad, RequestFailed) and bad.status == 400


def test_unreachable_server_is_model_unavailable():
    from diffcap.errors import ModelUnavailable
    from support.servers import free_port

    backend = get_backend(
        "openai",
        api_base=f"http://127.0.0.1:{free_port()}/v1",
        retry=RetryPolicy(max_retries=1, base_s=0.01),
    )
    with pytest.raises(ModelUnavailable) as err:
        backend.generate(req())
    assert "cannot reach the model server" in str(err.value)
    assert "--backend transformers --model /path/to/dir" in str(err.value)


def test_connection_drops_after_success_stay_request_failures(fault_server):
    backend = make(fault_server, retry=RetryPolicy(max_retries=1, base_s=0.01))
    backend.generate(req())
    fault_server.fail("drop", "drop")
    with pytest.raises(RequestFailed, match="connection failed"):
        backend.generate(req())


def test_backend_pickles_and_works_after(fault_server):
    import pickle

    backend = make(fault_server)
    backend.generate(req())
    copy = pickle.loads(pickle.dumps(backend))
    assert copy.generate(req("again")).text == "ok: again"
