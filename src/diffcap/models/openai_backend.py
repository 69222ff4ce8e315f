"""The ``openai`` backend: any OpenAI-compatible chat-completions server.

Works with OpenAI itself and with local servers (vLLM, SGLang, Ollama, ``transformers serve``).
Images go as base64 data URLs (each image base64'd once, however many requests use it).
Requests are bounded by ``cfg.concurrency``, each has a total timeout, and transient failures
(429, 5xx, timeouts, dropped connections, unparseable bodies) are retried with exponential
backoff and jitter, honouring ``Retry-After``; the SDK's own retries are off so ours are the
only ones. Errors that retrying cannot fix (400, 401, 403, 404, refusals, empty answers) raise
:class:`~diffcap.errors.RequestFailed` with ``retryable=False`` at once.

    cfg = ModelConfig(api_base="http://127.0.0.1:8000/v1", model="my-vlm")
    backend = OpenAIBackend(cfg)                      # or get_backend("openai", cfg)
    resp = await backend.agenerate(ModelRequest(model=backend.model, prompt="Hi"))
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, ClassVar

import openai

from diffcap.config import ModelConfig
from diffcap.errors import ModelUnavailable, RequestFailed
from diffcap.models.base import Backend, ImageInput, ModelRequest, ModelResponse
from diffcap.models.pricing import PricesArg, PriceTable
from diffcap.models.retry import RetryPolicy, classify_exception
from diffcap.timeline import Usage

log = logging.getLogger(__name__)
# The SDK's HTTP client logs every request at INFO; keep that out of diffcap's -v output.
for _name in ("httpx", "httpx2"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.WARNING)

DEFAULT_MODEL = "gpt-4o-mini"
#: Sent as the key to local servers that need none (the SDK insists on some key).
PLACEHOLDER_KEY = "not-needed"
#: How many base64 data URLs to keep (a sliding window reuses each keyframe twice).
_B64_CACHE_SIZE = 64

HOW_TO_POINT = (
    "set OPENAI_API_KEY (or --api-key) for OpenAI; or use a local OpenAI-compatible server "
    "with --api-base http://127.0.0.1:8000/v1 --model NAME; or run a model in-process with "
    "--backend transformers --model /path/to/dir"
)


class OpenAIBackend(Backend):
    """Chat completions over HTTP with the official ``openai`` SDK (AsyncOpenAI)."""

    name: ClassVar[str] = "openai"
    default_model: ClassVar[str] = DEFAULT_MODEL
    supports_multi_image: ClassVar[bool] = True
    supports_batching: ClassVar[bool] = False

    def __init__(
        self,
        cfg: ModelConfig | None = None,
        *,
        prices: PricesArg = None,
        retry: RetryPolicy | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        self.cfg = cfg or ModelConfig()
        self.model = self.cfg.model or DEFAULT_MODEL
        self.api_base = self.cfg.api_base or os.environ.get("OPENAI_BASE_URL") or None
        key = self.cfg.api_key or os.environ.get("OPENAI_API_KEY") or None
        if key is None and self.api_base is None:
            # Fail before any request: nothing could ever succeed.
            raise ModelUnavailable(
                "the openai backend needs an API key or an OpenAI-compatible server URL",
                hint=HOW_TO_POINT,
            )
        self._key = key or PLACEHOLDER_KEY
        self.retry = retry or RetryPolicy(max_retries=self.cfg.max_retries)
        self.extra_body = dict(extra_body or {})
        self.prices = PriceTable(prices if prices is not None else self.cfg.prices)
        self._b64: OrderedDict[str, str] = OrderedDict()  # "mime:sha256" -> data URL
        # Clients and semaphores belong to one event loop; generate() runs a new loop per
        # call, so they are made per loop.
        self._loops: dict[int, tuple[asyncio.AbstractEventLoop, Any, asyncio.Semaphore]] = {}
        self._guards: set[asyncio.Task] = set()
        self._warned_beams = False
        self._reached = False  # becomes True after the first successful answer

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIBackend(model={self.model!r}, api_base={self.api_base!r})"

    def __getstate__(self) -> dict[str, Any]:
        # Picklable (Ray ships stages to workers): clients and loop state are rebuilt there.
        state = self.__dict__.copy()
        state.update(_loops={}, _guards=set(), _b64=OrderedDict())
        return state

    # --- plumbing ------------------------------------------------------------------------

    def _state(self) -> tuple[Any, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        entry = self._loops.get(id(loop))
        if entry is None or entry[0] is not loop:
            client = openai.AsyncOpenAI(
                api_key=self._key,
                base_url=self.api_base,
                timeout=self.cfg.timeout_s,
                max_retries=0,  # our retry loop is the only one
            )
            entry = (loop, client, asyncio.Semaphore(self.cfg.concurrency))
            self._loops = {k: v for k, v in self._loops.items() if not v[0].is_closed()}
            self._loops[id(loop)] = entry
            # Close the client inside its own loop when that loop ends (asyncio.run cancels
            # pending tasks before closing); a client collected later, from another loop,
            # would try to close its connections on a closed loop.
            guard = loop.create_task(self._close_at_loop_end(loop, client))
            self._guards.add(guard)
            guard.add_done_callback(self._guards.discard)
        return entry[1], entry[2]

    async def _close_at_loop_end(self, loop: asyncio.AbstractEventLoop, client: Any) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            entry = self._loops.get(id(loop))
            if entry is not None and entry[1] is client:
                del self._loops[id(loop)]
            await client.close()

    def data_url(self, image: ImageInput) -> str:
        """``data:image/jpeg;base64,...``, computed once per distinct image."""
        key = f"{image.mime}:{image.sha256}"
        url = self._b64.get(key)
        if url is None:
            url = f"data:{image.mime};base64,{base64.b64encode(image.data).decode('ascii')}"
            self._b64[key] = url
            if len(self._b64) > _B64_CACHE_SIZE:
                self._b64.popitem(last=False)
        else:
            self._b64.move_to_end(key)
        return url

    def build_payload(self, request: ModelRequest) -> dict[str, Any]:
        """The chat-completions keyword arguments for ``request`` (images before the text)."""
        opts = request.options_dict
        detail = opts.get("detail", self.cfg.detail)
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        if request.images:
            parts: list[dict[str, Any]] = []
            for img in request.images:
                image_url: dict[str, Any] = {"url": self.data_url(img)}
                if detail:
                    image_url["detail"] = detail
                parts.append({"type": "image_url", "image_url": image_url})
            parts.append({"type": "text", "text": request.prompt})
            messages.append({"role": "user", "content": parts})
        else:  # plain string: accepted by text-only servers too
            messages.append({"role": "user", "content": request.prompt})
        payload: dict[str, Any] = {"model": request.model or self.model, "messages": messages}
        max_tokens = opts.get("max_tokens", self.cfg.max_tokens)
        # OpenAI itself wants max_completion_tokens (reasoning models refuse max_tokens);
        # compatible servers mostly know only max_tokens.
        payload["max_completion_tokens" if self.api_base is None else "max_tokens"] = max_tokens
        temperature = opts.get("temperature", self.cfg.temperature)
        if temperature is not None:
            payload["temperature"] = temperature
        num_beams = opts.get("num_beams", self.cfg.num_beams)
        if num_beams and num_beams > 1 and not self._warned_beams:
            self._warned_beams = True
            log.warning(
                "num_beams=%s is not part of the OpenAI API and is not sent; pass the "
                "server's own parameter with extra_body, or use --backend transformers",
                num_beams,
            )
        if self.extra_body:
            payload["extra_body"] = dict(self.extra_body)
        return payload

    # --- requests ------------------------------------------------------------------------

    async def agenerate(self, request: ModelRequest) -> ModelResponse:
        client, sem = self._state()
        async with sem:
            # Built under the semaphore: queued requests hold no base64 copies.
            payload = self.build_payload(request)
            try:
                response = await self.retry.run(
                    lambda: self._attempt(client, payload), what=_describe(request)
                )
            except RequestFailed as exc:
                if not self._reached and _is_connect_error(exc):
                    # Never reached the server at all: a setup problem, not a bad request.
                    raise ModelUnavailable(
                        f"cannot reach the model server at {self.api_base or 'api.openai.com'}"
                        f" ({exc.message})",
                        hint="start the server or fix --api-base; " + HOW_TO_POINT,
                    ) from exc
                raise
        self._reached = True
        return response

    async def _attempt(self, client: Any, payload: dict[str, Any]) -> ModelResponse:
        try:
            # The SDK's timeout is per read; wait_for bounds the whole request.
            completion = await asyncio.wait_for(
                client.chat.completions.create(**payload), timeout=self.cfg.timeout_s + 1.0
            )
        except Exception as exc:
            raise classify_exception(exc) from exc
        return self._parse(completion, payload["model"])

    def _parse(self, completion: Any, model: str) -> ModelResponse:
        choices = getattr(completion, "choices", None)
        if not choices:
            raise RequestFailed("the server answered with no choices", retryable=True)
        choice = choices[0]
        message = choice.message
        refusal = getattr(message, "refusal", None)
        if refusal:
            raise RequestFailed(f"the model refused: {refusal}", retryable=False)
        if choice.finish_reason == "content_filter":
            raise RequestFailed("the answer was blocked by the content filter", retryable=False)
        text = message.content
        if not text or not text.strip():
            raise RequestFailed(
                f"the model returned empty content (finish_reason={choice.finish_reason})",
                retryable=False,
                hint="raise max_tokens, or check that the model accepts images",
            )
        usage = _usage(getattr(completion, "usage", None))
        name = getattr(completion, "model", None) or model
        usage.cost_usd = self.prices.cost(name, usage.prompt_tokens, usage.completion_tokens)
        return ModelResponse(text=text, model=name, usage=usage, finish_reason=choice.finish_reason)

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        entry = self._loops.pop(id(loop), None)
        if entry is not None:
            await entry[1].close()
        for task in [t for t in self._guards if t.get_loop() is loop]:
            task.cancel()
            self._guards.discard(task)


def _usage(u: Any) -> Usage:
    if u is None:
        return Usage(requests=1)
    return Usage(
        requests=1,
        prompt_tokens=int(getattr(u, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(u, "completion_tokens", 0) or 0),
    )


def _is_connect_error(exc: BaseException) -> bool:
    """Whether the failure chain holds a connection error (not a timeout, not an answer)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, openai.APIConnectionError) and not isinstance(
            seen, openai.APITimeoutError
        ):
            return True
        seen = seen.__cause__
    return False


def _describe(request: ModelRequest) -> str:
    tags = dict(request.tags)
    bits = [f"{k}={tags[k]}" for k in ("video_id", "step") if k in tags]
    return " ".join(bits) or f"request {request.cache_key()[:8]}"
