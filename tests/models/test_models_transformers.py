"""The transformers backend in-process on the tiny LLaVA: single, batched, beams, errors."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

pytest.importorskip("torch")
pytest.importorskip("transformers")

from diffcap.errors import ModelUnavailable
from diffcap.models import ImageInput, ModelRequest, get_backend
from diffcap.models.transformers_backend import TransformersBackend
from support.tiny_llava import IMAGE_TOKENS


def jpeg(colour, size=(64, 48)) -> ImageInput:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG")
    return ImageInput(buf.getvalue())


@pytest.fixture(scope="module")
def backend(tiny_llava_dir):
    return get_backend(
        "transformers", model=str(tiny_llava_dir), max_tokens=6, batch_size=4, device="cpu"
    )


@pytest.fixture
def batch_sizes(backend, monkeypatch):
    """Record how many requests each forward pass carried (the real pass still runs)."""
    sizes: list[int] = []
    real = backend.generate_batch_sync

    def spy(requests):
        sizes.append(len(requests))
        return real(requests)

    monkeypatch.setattr(backend, "generate_batch_sync", spy)
    return sizes


def req(backend, prompt, images=(), **options):
    return ModelRequest(
        model=backend.model,
        prompt=prompt,
        images=tuple(images),
        options=ModelRequest.make_options(options),
    )


def test_single_requests_with_zero_one_two_images(backend):
    assert isinstance(backend, TransformersBackend) and backend.supports_batching
    r0 = backend.generate(req(backend, "Describe the frame."))
    r1 = backend.generate(req(backend, "Describe the frame.", [jpeg((255, 0, 0))]))
    r2 = backend.generate(
        req(backend, "Describe the frame.", [jpeg((255, 0, 0)), jpeg((0, 0, 255), (30, 90))])
    )
    for r in (r0, r1, r2):
        assert r.text and r.model == backend.model
        assert r.usage.completion_tokens <= 6 and r.usage.cost_usd == 0.0
        assert r.finish_reason in ("stop", "length")
    assert r1.usage.prompt_tokens - r0.usage.prompt_tokens == IMAGE_TOKENS
    assert r2.usage.prompt_tokens - r1.usage.prompt_tokens == IMAGE_TOKENS


def test_concurrent_requests_share_forward_passes(backend, batch_sizes):
    requests = [
        req(backend, f"Describe frame {i}.", [jpeg((i * 25, 0, 0))] * (i % 3)) for i in range(9)
    ]

    async def run():
        return await backend.agenerate_batch(requests)

    batched = asyncio.run(run())
    assert sorted(batch_sizes, reverse=True) == [4, 4, 1]  # batch_size=4
    batch_sizes.clear()
    # Left padding makes batched answers identical to one-at-a-time answers.
    singles = [backend.generate(r) for r in requests[:4]]
    assert batch_sizes == [1, 1, 1, 1]
    assert [s.text for s in singles] == [b.text for b in batched[:4]]
    assert [s.usage.prompt_tokens for s in singles] == [b.usage.prompt_tokens for b in batched[:4]]


def test_different_settings_are_not_mixed_in_one_pass(backend, batch_sizes):
    requests = [
        req(backend, "a", max_tokens=3),
        req(backend, "b", max_tokens=5),
        req(backend, "c", max_tokens=3),
    ]

    async def run():
        return await asyncio.gather(*(backend.agenerate(r) for r in requests))

    out = asyncio.run(run())
    assert sorted(batch_sizes) == [1, 2]
    assert out[0].usage.completion_tokens <= 3 and out[1].usage.completion_tokens <= 5


def test_beam_search(backend, monkeypatch):
    model, _, _ = backend.load()
    seen = []
    real = model.generate

    def recording_generate(*args, **kwargs):
        seen.append({k: kwargs[k] for k in ("num_beams", "do_sample", "max_new_tokens")})
        return real(*args, **kwargs)

    monkeypatch.setattr(model, "generate", recording_generate)
    beams = backend.generate(req(backend, "Describe frame 1.", max_tokens=10, num_beams=3))
    greedy = backend.generate(req(backend, "Describe frame 1.", max_tokens=10))
    assert beams.text and greedy.text and beams.usage.completion_tokens <= 10
    assert seen == [
        {"num_beams": 3, "do_sample": False, "max_new_tokens": 10},
        {"num_beams": 1, "do_sample": False, "max_new_tokens": 10},
    ]


def test_generation_settings(tiny_llava_dir):
    from diffcap.config import ModelConfig

    backend = TransformersBackend(ModelConfig(model=str(tiny_llava_dir), max_tokens=50))
    kw = backend.generation_kwargs(ModelRequest(model="m", prompt="x"))
    assert kw == {"max_new_tokens": 50, "num_beams": 1, "do_sample": False}
    kw = backend.generation_kwargs(
        ModelRequest(
            model="m",
            prompt="x",
            options=ModelRequest.make_options({"temperature": 0.7, "max_tokens": 9}),
        )
    )
    assert kw == {"max_new_tokens": 9, "num_beams": 1, "do_sample": True, "temperature": 0.7}


def test_unloadable_hub_id_says_how_to_point_at_a_folder():
    backend = get_backend("transformers", model="someorg/not-a-real-model-xyz")
    with pytest.raises(ModelUnavailable) as err:
        backend.generate(ModelRequest(model=backend.model, prompt="hi"))
    msg = str(err.value)
    assert "someorg/not-a-real-model-xyz" in msg
    assert "--backend transformers --model /path/to/dir" in msg
    assert "--api-base http://127.0.0.1:8000/v1 --model NAME" in msg


def test_default_model_is_documented():
    assert TransformersBackend.default_model == "llava-hf/llava-interleave-qwen-0.5b-hf"


def test_backend_pickles_without_weights(backend):
    import pickle

    backend.load()
    copy = pickle.loads(pickle.dumps(backend))
    assert copy._loaded is None and copy.model == backend.model
    assert copy.generate(req(copy, "Describe.")).text


@pytest.mark.gpu
def test_cuda_generation(tiny_llava_dir):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    gpu = get_backend("transformers", model=str(tiny_llava_dir), max_tokens=4)
    resp = gpu.generate(req(gpu, "Describe.", [jpeg((0, 200, 0))]))
    assert resp.text and gpu.load()[2] == "cuda"
