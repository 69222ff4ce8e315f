"""The openai backend against a real ``transformers serve`` running the tiny LLaVA."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest
from PIL import Image

from diffcap.errors import RequestFailed
from diffcap.models import ImageInput, ModelRequest, get_backend, pricing
from diffcap.models.retry import RetryPolicy
from diffcap.timeline import Usage
from support.tiny_llava import IMAGE_TOKENS

pytest.importorskip("fastapi", reason="transformers serve needs the serving extra")


def jpeg(colour, size=(64, 48)) -> ImageInput:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG")
    return ImageInput(buf.getvalue())


@pytest.fixture
def backend(tiny_llava_server):
    return get_backend(
        "openai",
        api_base=tiny_llava_server.base_url,
        model=tiny_llava_server.model,
        max_tokens=8,
        timeout_s=60,
        retry=RetryPolicy(max_retries=1, base_s=0.05),
    )


def ask(backend, prompt, images=()):
    return ModelRequest(model=backend.model, prompt=prompt, images=tuple(images))


def test_text_one_and_two_images(backend):
    red, blue = jpeg((255, 0, 0)), jpeg((0, 0, 255), (40, 80))
    r0 = backend.generate(ask(backend, "Describe the frame."))
    r1 = backend.generate(ask(backend, "Describe the frame.", [red]))
    r2 = backend.generate(ask(backend, "Describe the frame.", [red, blue]))
    for r in (r0, r1, r2):
        assert r.text and r.usage.requests == 1
        assert 0 < r.usage.completion_tokens <= 8
    # Each image expands to exactly IMAGE_TOKENS prompt tokens in the served model.
    assert r1.usage.prompt_tokens - r0.usage.prompt_tokens == IMAGE_TOKENS
    assert r2.usage.prompt_tokens - r1.usage.prompt_tokens == IMAGE_TOKENS


def test_greedy_answers_are_repeatable(backend):
    red, green = jpeg((255, 0, 0)), jpeg((0, 255, 0))
    a = backend.generate(ask(backend, "What changed?", [red, green])).text
    b = backend.generate(ask(backend, "What changed?", [red, green])).text
    assert a == b


def test_usage_accumulates_and_unknown_model_costs_nothing(backend, caplog, monkeypatch):
    monkeypatch.setattr(pricing, "_warned", set())
    requests = [ask(backend, f"Frame {i}: describe.", [jpeg((i * 40, 0, 0))]) for i in range(4)]

    async def run():
        return await backend.agenerate_batch(requests)

    with caplog.at_level(logging.WARNING, logger="diffcap"):
        responses = asyncio.run(run())
    total = Usage()
    for r in responses:
        total.add(r.usage)
    assert total.requests == 4
    assert total.prompt_tokens == sum(r.usage.prompt_tokens for r in responses) > 4 * IMAGE_TOKENS
    assert total.cost_usd == 0.0
    # a server on this machine does not bill: no price warning for it
    assert sum("no price known" in r.getMessage() for r in caplog.records) == 0


def test_wrong_model_name_is_a_non_retryable_400(tiny_llava_server):
    backend = get_backend(
        "openai",
        api_base=tiny_llava_server.base_url,
        model="other",
        retry=RetryPolicy(max_retries=3, base_s=0.01),
    )
    with pytest.raises(RequestFailed) as err:
        backend.generate(ModelRequest(model="other", prompt="hi"))
    assert err.value.status == 400 and not err.value.retryable
    assert "pinned" in str(err.value)
