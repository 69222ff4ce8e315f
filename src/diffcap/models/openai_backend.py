"""The ``openai`` backend: any OpenAI-compatible chat-completions server.

Works with OpenAI itself and with local servers (vLLM, SGLang, Ollama, ``transformers serve``).
Images go as base64 data URLs (each image base64'd and JSON-escaped once, however many
requests use it). Each request body is serialised once, to bytes, and sent with the SDK's
``post`` (its auth, headers, timeouts, connection pool and error types); the SDK's per-request
walk of the typed parameters and its pydantic response model are skipped (they cost more CPU
than the rest of a request): the answer is read with ``json.loads``.
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
import inspect
import logging
import os
import socket
import urllib.parse
from collections.abc import Mapping
from typing import Any, ClassVar

import openai

from diffcap.config import ModelConfig
from diffcap.errors import ModelUnavailable, RequestFailed
from diffcap.models.base import Backend, ImageInput, ModelRequest, ModelResponse
from diffcap.models.chat import folder_image_cost
from diffcap.models.context import (
    ContextWindow,
    TokenCounter,
    context_of_folder,
    load_tokenizer_counter,
    server_context,
)
from diffcap.models.health import EndpointHealth
from diffcap.models.identity import served_identity
from diffcap.models.openai_body import ChatBody
from diffcap.models.openai_wire import (
    check_url_credentials,
    content_text,
    decode_body,
    describe,
    display_url,
    http_response_type,
    is_connect_error,
    is_loopback,
    usage_of,
    within,
)
from diffcap.models.pricing import PricesArg, PriceTable
from diffcap.models.retry import RetryPolicy, classify_exception

log = logging.getLogger(__name__)
# The SDK's HTTP client logs every request at INFO; keep that out of diffcap's -v output.
for _name in ("httpx", "httpx2"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.WARNING)

DEFAULT_MODEL = "gpt-4o-mini"
#: Sent as the key to local servers that need none (the SDK insists on some key).
PLACEHOLDER_KEY = "not-needed"
_PATH = "/chat/completions"


#: ``cast_to`` for ``post``: the raw response, without the SDK's response model.
_RAW = http_response_type()
#: Whether ``post`` takes ``content=`` (serialised bytes); old SDKs serialise ``body`` dicts.
_POST_TAKES_BYTES = "content" in inspect.signature(openai.AsyncOpenAI.post).parameters

HOW_TO_POINT = (
    "set OPENAI_API_KEY (the diffcap CLI also reads DIFFCAP_API_KEY, or pass --api-key) for "
    "OpenAI; or use a local OpenAI-compatible server "
    "with --api-base http://127.0.0.1:8000/v1 --model NAME; or run a model in-process with "
    "--backend transformers --model /path/to/dir"
)


class OpenAIBackend(Backend):
    """Chat completions over HTTP with the official ``openai`` SDK (AsyncOpenAI)."""

    name = "openai"
    default_model: ClassVar[str] = DEFAULT_MODEL
    supports_multi_image = True
    supports_batching = False

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
        check_url_credentials(self.api_base, self.cfg.api_key, os.environ.get("OPENAI_API_KEY"))
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
        #: Whether the endpoint bills: a missing price is warned about (once) only for remote
        #: endpoints; a server on this machine costs what a price table says, else nothing.
        self.bills = not is_loopback(self.api_base)
        #: The request bodies (images' data URLs cached across requests).
        self.body = ChatBody(self)
        # Clients and semaphores belong to one event loop; generate() runs a new loop per
        # call, so they are made per loop.
        self._loops: dict[int, tuple[asyncio.AbstractEventLoop, Any, asyncio.Semaphore]] = {}
        self._guards: set[asyncio.Task[Any]] = set()
        self._reached = False  # becomes True after the first successful answer
        self.health = EndpointHealth(self.cfg.give_up_after_s, display_url(self.api_base))

    def preflight(self, timeout_s: float = 2.0) -> None:
        """Fail within ``timeout_s`` when nothing listens at the endpoint (a closed port, a
        mistyped host), before any video is decoded. Opens one TCP connection, sends
        nothing; whether the server serves this model shows on the first request."""
        url = urllib.parse.urlsplit(self.api_base or "https://api.openai.com/v1")
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            socket.create_connection((url.hostname or "localhost", port), timeout_s).close()
        except OSError as exc:
            raise ModelUnavailable(
                f"cannot reach the model server at {display_url(self.api_base)} ({exc})",
                hint="start the server or fix --api-base"
                + ("" if self.api_base else "; " + HOW_TO_POINT),
            ) from None

    # --- context (see diffcap.models.context) --------------------------------------------

    def _local_folder(self) -> str | None:
        """A local folder holding the model's files: ``model.tokenizer``, or the model name
        itself when the server serves a folder by path (``transformers serve DIR``, vLLM)."""
        for name in (self.cfg.tokenizer, self.model):
            if name and os.path.isdir(os.path.expanduser(name)):
                return name
        return None

    def reported_context(self) -> ContextWindow | None:
        if "_context" not in self.__dict__:
            found = None
            if self.api_base is not None:
                tokens = server_context(self.api_base, self.model, self._key)
                if tokens:
                    found = ContextWindow(tokens, f"{display_url(self.api_base)}/models")
            folder = self._local_folder()
            if found is None and folder is not None:
                found = context_of_folder(folder)
            self._context = found
        return self._context

    def served_identity(self, model: str) -> str | None:
        """What the server lists for ``model`` (``GET /models``: root, created, revision),
        hashed; part of the request cache key (:mod:`diffcap.models.identity`)."""
        return served_identity(self.api_base, model, self._key) if self.api_base else None

    def token_counter(self) -> TokenCounter | None:
        if "_counter" not in self.__dict__:
            source = self.cfg.tokenizer or self._local_folder()
            self._counter = load_tokenizer_counter(source) if source else None
        return self._counter

    def image_token_cost(self) -> int | None:
        folder = self._local_folder()
        return folder_image_cost(folder, self.cfg.image_max_side) if folder else None

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIBackend(model={self.model!r}, api_base={self.api_base!r})"

    def __getstate__(self) -> dict[str, Any]:
        # Picklable (Ray ships stages to workers): clients and loop state are rebuilt there.
        state = self.__dict__.copy()
        state.update(_loops={}, _guards=set())
        state.pop("_counter", None)  # a tokenizer: each worker loads its own
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
        return self.body.data_url(image)

    def build_payload(self, request: ModelRequest) -> dict[str, Any]:
        """The chat-completions JSON body for ``request`` (see :class:`ChatBody`)."""
        return self.body.build_payload(request)

    def build_body(self, request: ModelRequest) -> bytes:
        """:meth:`build_payload` serialised as the SDK would (see :class:`ChatBody`)."""
        return self.body.build_body(request)

    # --- requests ------------------------------------------------------------------------

    async def agenerate(self, request: ModelRequest) -> ModelResponse:
        client, sem = self._state()
        model = request.model or self.model
        allow_empty = bool(request.options_dict.get("allow_empty"))  # an eval's answer
        async with sem:
            # Built under the semaphore: queued requests hold no request bodies. Built once:
            # retries send the same bytes.
            body = self.build_body(request) if _POST_TAKES_BYTES else self.build_payload(request)
            try:
                response = await self.retry.run(
                    lambda: self._attempt(client, body, model, allow_empty),
                    what=describe(request),
                    gate=self.health.raise_if_down,
                )
            except RequestFailed as exc:
                if not self._reached and is_connect_error(exc):
                    # Never reached the server at all: a setup problem, not a bad request.
                    raise ModelUnavailable(
                        f"cannot reach the model server at {display_url(self.api_base)}"
                        f" ({exc.message})",
                        hint="start the server or fix --api-base; " + HOW_TO_POINT,
                    ) from exc
                raise
        self._reached = True
        return response

    async def _attempt(
        self, client: Any, body: bytes | dict[str, Any], model: str, allow_empty: bool = False
    ) -> ModelResponse:
        # The SDK's own request path (auth, headers, timeouts, status -> APIStatusError,
        # connection/timeout errors) without its parameter transform and response model.
        sent = {"content": body} if isinstance(body, bytes) else {"body": body}
        self.health.raise_if_down()
        slow = asyncio.get_running_loop().call_later(self.cfg.warn_after_s, self._warn_slow, model)
        try:
            # The SDK's timeout is per read; this bounds the whole request.
            raw = await within(client.post(_PATH, cast_to=_RAW, **sent), self.cfg.timeout_s + 1.0)
            parsed = self._parse(decode_body(raw.content), model, allow_empty)
        except Exception as exc:
            failed = classify_exception(exc)
            self.health.failure(failed)
            if failed is exc:
                raise
            raise failed from exc
        finally:
            slow.cancel()
        self.health.success()
        return parsed

    def _warn_slow(self, model: str) -> None:
        log.warning(
            "%s: no answer for %s after %g s; still waiting (timeout %g s, model.warn_after_s)",
            display_url(self.api_base),
            model,
            self.cfg.warn_after_s,
            self.cfg.timeout_s,
        )

    def _parse(self, data: dict[str, Any], model: str, allow_empty: bool = False) -> ModelResponse:
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise RequestFailed("the server answered with no choices", retryable=True)
        choice = choices[0]
        message = choice.get("message")
        message = message if isinstance(message, dict) else {}
        refusal = message.get("refusal")
        if refusal:
            raise RequestFailed(f"the model refused: {refusal}", retryable=False)
        finish = choice.get("finish_reason")
        finish = finish if isinstance(finish, str) else None
        if finish == "content_filter":
            raise RequestFailed("the answer was blocked by the content filter", retryable=False)
        text = content_text(message.get("content"))
        if not text.strip() and not allow_empty:
            raise RequestFailed(
                f"the model returned empty content (finish_reason={finish})",
                retryable=False,
                hint="raise max_tokens, or check that the model accepts images",
            )
        usage = usage_of(data.get("usage"))
        name = data.get("model")
        name = name if isinstance(name, str) and name else model
        if self.bills:
            usage.cost_usd = self.prices.cost(name, usage.prompt_tokens, usage.completion_tokens)
        elif (price := self.prices.lookup(name)) is not None:  # a local proxy to a paid API
            usage.cost_usd = price.cost(usage.prompt_tokens, usage.completion_tokens)
        return ModelResponse(text=text, model=name, usage=usage, finish_reason=finish)

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        entry = self._loops.pop(id(loop), None)
        if entry is not None:
            await entry[1].close()
        for task in [t for t in self._guards if t.get_loop() is loop]:
            task.cancel()
            self._guards.discard(task)
