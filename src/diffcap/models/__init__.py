"""Model backends behind one interface, a registry, and cost estimates.

Built-in backends: ``openai`` (any OpenAI-compatible server: OpenAI, vLLM, SGLang, Ollama,
``transformers serve``; default model ``gpt-4o-mini``) and ``transformers`` (a Hugging Face
image-text-to-text model in-process, the ``local`` extra; default model
``llava-hf/llava-interleave-qwen-0.5b-hf``). Third parties add backends through the
``diffcap.backends`` entry-point group.

    from diffcap.models import ImageInput, ModelRequest, get_backend
    backend = get_backend("openai", api_base="http://127.0.0.1:8000/v1", model="my-vlm")
    resp = backend.generate(ModelRequest(model=backend.model, prompt="Describe.",
                                         images=(ImageInput(jpeg_bytes),)))
    resp.text, resp.usage.prompt_tokens, resp.usage.cost_usd
"""

from diffcap.models.base import Backend, ImageInput, ModelRequest, ModelResponse
from diffcap.models.pricing import Price, PriceTable, estimate_cost
from diffcap.models.registry import (
    available_backends,
    backend_class,
    get_backend,
    register_backend,
)

__all__ = [
    "Backend",
    "ImageInput",
    "ModelRequest",
    "ModelResponse",
    "Price",
    "PriceTable",
    "available_backends",
    "backend_class",
    "estimate_cost",
    "get_backend",
    "register_backend",
]
