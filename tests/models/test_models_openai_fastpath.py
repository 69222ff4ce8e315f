"""The openai backend's low-level request path: the SDK's ``post`` with a body serialised once.

Checks that the wire body is the JSON of :meth:`build_payload`, that the SDK's parameter
transform and response model are really skipped, that the SDK still raises the error kinds
the retry mapping expects, and that odd answers are parsed or rejected as before.
"""

from __future__ import annotations

import asyncio
import json
import logging

import openai
import pytest

from diffcap.errors import RequestFailed
from diffcap.models import ImageInput, ModelRequest, get_backend
from diffcap.models import openai_backend as ob
from diffcap.models.openai_body import SLOT
from diffcap.models.retry import RetryPolicy

ONCE = RetryPolicy(max_retries=0)
#: For tests that build bodies or parse answers without any server.
NOWHERE = "http://127.0.0.1:9/v1"


def make(server, *, retry=None, **kwargs):
    kwargs.setdefault("timeout_s", 2.0)
    return get_backend(
        "openai",
        api_base=server.base_url,
        model="fault-model",
        retry=retry or RetryPolicy(max_retries=2, base_s=0.01, max_backoff_s=0.02),
        **kwargs,
    )


def req(prompt="Describe the frames.", images=(), system=None, **options):
    return ModelRequest(
        model="fault-model",
        prompt=prompt,
        images=tuple(images),
        system=system,
        options=ModelRequest.make_options(options),
    )


def sdk_json(payload):
    """How the SDK itself serialises a JSON body."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def causes(exc):
    """The exception and its chain of ``raise ... from`` causes."""
    chain = []
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__
    return chain


IMG_A = ImageInput(b"\xff\xd8jpeg-a" * 50)
IMG_B = ImageInput(b"\x89PNG-b" * 40, mime="image/png")


@pytest.mark.parametrize(
    "prompt, system, images",
    [
        ("Plain text, no images.", None, ()),
        ('Quotes " and \\ backslashes, ünïcödé, emoji 🎞', "Be precise.", (IMG_A,)),
        ("Two frames.", None, (IMG_A, IMG_B, IMG_A)),
    ],
)
def test_body_is_the_sdk_json_of_the_payload(prompt, system, images):
    backend = get_backend("openai", api_base=NOWHERE, detail="low")
    request = req(prompt, images, system, temperature=0.3)
    assert backend.build_body(request) == sdk_json(backend.build_payload(request))


def test_a_prompt_quoting_an_image_slot_is_sent_verbatim():
    backend = get_backend("openai", api_base=NOWHERE)
    for prompt in (f"{SLOT}0", f'"{SLOT}0"', f"{SLOT}7"):
        request = req(prompt, (IMG_A,))
        body = json.loads(backend.build_body(request))
        assert body["messages"][0]["content"][-1]["text"] == prompt
        assert body["messages"][0]["content"][0]["image_url"]["url"] == backend.data_url(IMG_A)


def test_extra_body_is_merged_at_the_top_like_the_sdk(fault_server):
    extra = {"top_k": 5, "chat_template_kwargs": {"enable_thinking": False}}
    backend = make(fault_server, extra_body=extra)
    backend.generate(req("hello there", (IMG_A,)))
    body = fault_server.requests[0].body
    assert body["top_k"] == 5 and body["chat_template_kwargs"] == {"enable_thinking": False}
    assert "extra_body" not in body
    assert body == json.loads(backend.build_body(req("hello there", (IMG_A,))))


def test_extra_body_replacing_the_messages_still_works():
    messages = [{"role": "user", "content": "overridden"}]
    backend = get_backend("openai", api_base=NOWHERE, extra_body={"messages": messages})
    body = json.loads(backend.build_body(req("x", (IMG_A,))))
    assert body["messages"] == messages


def test_unserialisable_options_fail_clearly():
    backend = get_backend("openai", api_base=NOWHERE, extra_body={"x": object()})
    with pytest.raises(RequestFailed, match="cannot serialise") as err:
        backend.build_body(req())
    assert err.value.retryable is False


def test_sdk_transform_and_response_model_are_skipped(fault_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    from openai._base_client import BaseClient
    from openai.resources.chat.completions import completions

    def forbidden(*args, **kwargs):
        raise AssertionError("the slow SDK path was used")

    monkeypatch.setattr(completions, "async_maybe_transform", forbidden)
    monkeypatch.setattr(BaseClient, "_process_response_data", forbidden)
    backend = make(fault_server)
    resp = backend.generate(req("hello world", (IMG_A, IMG_B)))
    assert resp.text == "ok: hello world" and resp.usage.prompt_tokens == 2 + 20
    headers = fault_server.requests[0].headers
    assert headers["content-type"] == "application/json"
    assert headers["authorization"] == "Bearer not-needed"


def test_retries_resend_the_same_bytes_built_once(fault_server, monkeypatch):
    backend = make(fault_server)
    built = []
    real = backend.build_body
    monkeypatch.setattr(backend, "build_body", lambda r: built.append(r) or real(r))
    fault_server.fail("server_error", "rate_limit", retry_after=0.01)
    backend.generate(req("again please", (IMG_A,)))
    assert len(built) == 1
    first, second, third = (r.body for r in fault_server.requests)
    assert first == second == third


@pytest.mark.parametrize(
    "kind, status, sdk_error, retryable",
    [
        ("rate_limit", None, openai.RateLimitError, True),
        ("server_error", None, openai.InternalServerError, True),
        ("status", 503, openai.APIStatusError, True),
        ("status", 400, openai.BadRequestError, False),
        ("status", 404, openai.NotFoundError, False),
        ("drop", None, openai.APIConnectionError, True),
        ("stall", None, openai.APITimeoutError, True),
    ],
)
def test_sdk_errors_on_the_low_level_path(fault_server, kind, status, sdk_error, retryable):
    backend = make(fault_server, retry=ONCE, timeout_s=1.0)
    backend.generate(req("warm up"))  # reached once: a later drop is no ModelUnavailable
    fault_server.fail(kind, status=status or 500, retry_after=0.01, stall_s=4.0)
    with pytest.raises(RequestFailed) as err:
        backend.generate(req())
    assert any(isinstance(e, sdk_error) for e in causes(err.value)), causes(err.value)
    assert err.value.retryable is retryable
    if status:
        assert err.value.status == status


def test_whole_request_timeout_beyond_the_sdk_read_timeout(fault_server):
    backend = make(fault_server, retry=ONCE, timeout_s=5.0)

    async def run():
        await backend.agenerate(req("warm up"))  # this loop's client: 5 s read timeout
        backend.cfg.timeout_s = 0.2  # our whole-request bound: 1.2 s
        fault_server.fail("stall", stall_s=4.0)
        try:
            await backend.agenerate(req())
        finally:
            await backend.aclose()

    with pytest.raises(RequestFailed, match="timed out") as err:
        asyncio.run(run())
    chain = causes(err.value)
    assert any(isinstance(e, TimeoutError) for e in chain), chain
    # our own bound fired, not the SDK's read timeout
    assert not any(isinstance(e, openai.APITimeoutError) for e in chain), chain


def test_malformed_body_is_retried_then_reported(fault_server):
    backend = make(fault_server, retry=RetryPolicy(max_retries=1, base_s=0.01))
    fault_server.fail("malformed", "malformed")
    with pytest.raises(RequestFailed, match="unparseable response body") as err:
        backend.generate(req())
    assert err.value.retryable is True and len(fault_server.requests) == 2


def completion(**over):
    message = {"role": "assistant", "content": over.pop("content", "a caption")}
    message.update(over.pop("message", {}))
    choice = {"index": 0, "finish_reason": "stop", "message": message, **over.pop("choice", {})}
    data = {"model": "served-name", "choices": [choice], "usage": {"prompt_tokens": 3}}
    data.update(over)
    return data


@pytest.fixture
def parser():
    backend = get_backend(
        "openai",
        api_base=NOWHERE,
        prices={"served-name": {"input": 1.0, "output": 1.0}},
    )
    return backend._parse


def test_parse_a_normal_answer(parser):
    resp = parser(completion(), "asked")
    assert (resp.text, resp.model, resp.finish_reason) == ("a caption", "served-name", "stop")
    assert (resp.usage.requests, resp.usage.prompt_tokens, resp.usage.completion_tokens) == (
        1,
        3,
        0,
    )
    assert resp.usage.cost_usd == pytest.approx(3 / 1e6)


def test_parse_text_parts_and_missing_fields(parser):
    parts = [{"type": "text", "text": "two "}, {"type": "text", "text": "parts"}, {"x": 1}]
    assert parser(completion(content=parts), "asked").text == "two parts"
    resp = parser(completion(model=None, usage={"prompt_tokens": "n/a"}), "asked")
    assert resp.model == "asked" and resp.usage.prompt_tokens == 0


@pytest.mark.parametrize(
    "data, reason, retryable",
    [
        ({"choices": []}, "no choices", True),
        ({"choices": ["text"]}, "no choices", True),
        ({}, "no choices", True),
        (completion(content=None, message={"refusal": "no"}), "refused", False),
        (completion(choice={"finish_reason": "content_filter"}), "content filter", False),
        (completion(content="  "), "empty content", False),
        (completion(content=[{"type": "image"}]), "empty content", False),
    ],
)
def test_parse_rejects(parser, data, reason, retryable):
    with pytest.raises(RequestFailed, match=reason) as err:
        parser(data, "asked")
    assert err.value.retryable is retryable


@pytest.mark.parametrize("content", [b"[1, 2]", b'"text"', b"\xff\xfe\x00garbage", b""])
def test_decode_rejects_non_objects_as_retryable(content):
    from diffcap.models.openai_wire import decode_body

    with pytest.raises(RequestFailed, match="unparseable response body") as err:
        decode_body(content)
    assert err.value.retryable is True


def test_many_concurrent_requests_share_the_cached_images(fault_server):
    backend = make(fault_server, concurrency=8)
    frames = [ImageInput(bytes([i]) * 3000) for i in range(5)]
    requests = [req(f"pair {i}", (frames[i % 5], frames[(i + 1) % 5])) for i in range(40)]

    async def run():
        return await backend.agenerate_batch(requests)

    answers = asyncio.run(run())
    assert [a.text for a in answers] == [f"ok: pair {i}" for i in range(40)]
    assert backend.body.cached_images == 5
    received = sorted(fault_server.requests, key=lambda r: r.prompt)
    for got, request in zip(received, sorted(requests, key=lambda r: r.prompt), strict=True):
        assert got.body == backend.build_payload(request)


def test_sdks_without_content_get_the_payload_dict(fault_server, monkeypatch):
    # openai < 2 has no post(content=...): the payload dict goes as body (still no transform).
    monkeypatch.setattr(ob, "_POST_TAKES_BYTES", False)
    backend = make(fault_server, extra_body={"top_k": 3})
    request = req("old sdk path", (IMG_A,))
    assert backend.generate(request).text == "ok: old sdk path"
    assert fault_server.requests[0].body == backend.build_payload(request)


def test_price_warnings_only_for_endpoints_that_bill(caplog, monkeypatch):
    from diffcap.config import ModelConfig
    from diffcap.models import pricing
    from diffcap.models.openai_backend import OpenAIBackend

    monkeypatch.setattr(pricing, "_warned", set())
    answer = {
        "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2},
        "model": "mystery-vlm",
    }
    local = OpenAIBackend(ModelConfig(api_base="http://127.0.0.1:8000/v1", model="mystery-vlm"))
    remote = OpenAIBackend(
        ModelConfig(api_base="https://api.example.com/v1", model="x", api_key="k")
    )
    with caplog.at_level(logging.WARNING, logger="diffcap"):
        assert local._parse(answer, "mystery-vlm").usage.cost_usd == 0.0
        assert not [r for r in caplog.records if "no price known" in r.getMessage()]
        for _ in range(3):
            assert remote._parse(answer, "x").usage.cost_usd == 0.0
    warned = [r for r in caplog.records if "no price known" in r.getMessage()]
    assert len(warned) == 1  # once per model and process, remote endpoints only
    # a local proxy serving a priced model is still priced
    known = {**answer, "model": "gpt-4o-mini"}
    assert local._parse(known, "gpt-4o-mini").usage.cost_usd > 0
