"""The ``transformers`` backend: a Hugging Face image-text-to-text model, in-process.

Any model that ``AutoProcessor`` + ``AutoModelForImageTextToText`` load (LLaVA, LLaVA-NeXT,
LLaVA-interleave, Idefics, ...) by hub id or local folder; GPU when there is one (``device``
overrides). Concurrent :meth:`agenerate` calls are collected by a micro-batcher into one
``generate`` call of up to ``batch_size`` requests, run in a worker thread so the event loop
stays free. Greedy decoding by default; ``num_beams``, ``temperature`` and ``max_tokens``
(-> ``max_new_tokens``) come from the request options or the config.

Needs the ``local`` extra (torch, transformers). The default model,
``llava-hf/llava-interleave-qwen-0.5b-hf``, has a LLaVA processor (no torchvision needed) and
takes several images per prompt. Offline, download it once and pass the folder.

    backend = get_backend("transformers", model="/models/llava-interleave-qwen-0.5b-hf")
    responses = await backend.agenerate_batch(requests)   # batched forward passes
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from diffcap._deps import require
from diffcap.config import ModelConfig
from diffcap.errors import ModelUnavailable, RequestFailed
from diffcap.models.base import Backend, ModelRequest, ModelResponse
from diffcap.models.chat import encode_prompts, processor_image_cost, render_requests, tokenizer_of
from diffcap.models.context import (
    ContextWindow,
    TokenCounter,
    TokenizerCounter,
    context_from_config,
)
from diffcap.models.hub import check_hub_model, looks_like_local_path, offline_routes
from diffcap.timeline import Usage

log = logging.getLogger(__name__)

DEFAULT_MODEL = "llava-hf/llava-interleave-qwen-0.5b-hf"
HOW_TO_POINT = (
    "download the model once (e.g. `{hf} download {model} --local-dir DIR`) and "
    "use --backend transformers --model /path/to/dir; or serve a model with an "
    "OpenAI-compatible server and use --backend openai --api-base http://127.0.0.1:8000/v1 "
    "--model NAME"
)


class TransformersBackend(Backend):
    """Batched in-process generation with AutoProcessor + AutoModelForImageTextToText."""

    name = "transformers"
    default_model: ClassVar[str] = DEFAULT_MODEL
    supports_multi_image = True
    supports_batching = True

    def __init__(self, cfg: ModelConfig | None = None, *, batch_wait_s: float = 0.005) -> None:
        self.cfg = cfg or ModelConfig(backend="transformers")
        require("torch", purpose="the transformers backend")
        require("transformers", purpose="the transformers backend")
        self.model = self.cfg.model or DEFAULT_MODEL
        if _looks_like_path(self.model) and not Path(self.model).expanduser().is_dir():
            raise ModelUnavailable(
                f"model folder not found: {self.model} (no such folder)",
                hint=offline_routes("ID", HOW_TO_POINT),
            )
        #: Seconds the batcher waits for more requests after the first one arrives.
        self.batch_wait_s = batch_wait_s
        self._loaded: tuple[Any, Any, str] | None = None
        self._load_error: ModelUnavailable | None = None
        self._load_lock = threading.Lock()
        # One forward pass at a time, even when several event loops share this backend.
        self._generate_lock = threading.Lock()
        self._batchers: dict[int, _MicroBatcher] = {}

    def preflight(self) -> None:
        """A local folder must hold a model; a hub id must be cached, or the hub reachable."""
        folder = Path(self.model).expanduser()
        if folder.is_dir():
            base = adapter_base(folder)
            if base is not None:  # a LoRA adapter folder: its base model must be usable
                TransformersBackend(self.cfg.model_copy(update={"model": base})).preflight()
            elif not (folder / "config.json").is_file():
                raise ModelUnavailable(
                    f"{self.model}: not a model folder (no config.json or adapter_config.json)",
                    hint=offline_routes("ID", HOW_TO_POINT),
                )
            return

        check_hub_model(self.model)  # cached, or the hub can serve it now: else fail fast

    def __repr__(self) -> str:
        return f"TransformersBackend(model={self.model!r}, device={self.cfg.device!r})"

    def __getstate__(self) -> dict[str, Any]:
        # Picklable without the weights: a copy (e.g. on a Ray worker) loads its own.
        state = self.__dict__.copy()
        for key in ("_loaded", "_load_error"):
            state[key] = None
        state["_batchers"] = {}
        for key in ("_load_lock", "_generate_lock"):
            del state[key]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()

    # --- loading -------------------------------------------------------------------------

    def load(self) -> tuple[Any, Any, str]:
        """Load processor and model once (thread-safe); -> (model, processor, device)."""
        with self._load_lock:
            if self._load_error is not None:  # do not retry a failed (maybe slow) load
                raise self._load_error
            if self._loaded is None:
                try:
                    self._loaded = self._load()
                except ModelUnavailable as exc:
                    self._load_error = exc
                    raise
            return self._loaded

    def _load(self) -> tuple[Any, Any, str]:
        torch = require("torch")
        tf = require("transformers")
        device = self.cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        source = _source(self.model)
        log.info("loading %s on %s", self.model, device)
        try:
            processor, model = load_pretrained(tf, source, dtype)
        except (OSError, ValueError, KeyError, ImportError) as exc:
            raise ModelUnavailable(
                f"cannot load model '{self.model}': {str(exc).splitlines()[0]}",
                hint=offline_routes(self.model, HOW_TO_POINT),
            ) from exc
        model = model.to(device).eval()
        tokenizer = getattr(processor, "tokenizer", processor)
        tokenizer.padding_side = "left"  # decoder-only batched generation pads on the left
        return model, processor, device

    # --- context (see diffcap.models.context) --------------------------------------------

    def reported_context(self) -> ContextWindow | None:
        """From the model's config (loads the config only, not the weights)."""
        if self._loaded is not None:
            config = self._loaded[0].config.to_dict()
        else:
            tf = require("transformers")
            source = _source(self.model)
            base = adapter_base(Path(source)) if Path(source).is_dir() else None
            try:
                config = tf.AutoConfig.from_pretrained(base or source).to_dict()
            except (OSError, ValueError, KeyError) as exc:
                log.info("no config for %s (%s)", self.model, exc)
                return None
        tokens = context_from_config(config)
        return ContextWindow(tokens, f"config of {self.model}") if tokens else None

    def token_counter(self) -> TokenCounter | None:
        return TokenizerCounter(tokenizer_of(self.load()[1]), f"tokenizer of {self.model}")

    def image_token_cost(self) -> int | None:
        return processor_image_cost(self.load()[1], self.cfg.image_max_side)

    # --- requests ------------------------------------------------------------------------

    async def agenerate(self, request: ModelRequest) -> ModelResponse:
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(id(loop))
        if batcher is None or batcher.loop is not loop:
            self._batchers = {k: b for k, b in self._batchers.items() if not b.loop.is_closed()}
            batcher = self._batchers[id(loop)] = _MicroBatcher(self, loop)
        return await batcher.submit(request)

    async def agenerate_batch(self, requests: Sequence[ModelRequest]) -> list[ModelResponse]:
        """All requests go through the micro-batcher: ``batch_size`` per forward pass."""
        return list(await asyncio.gather(*(self.agenerate(r) for r in requests)))

    def generation_kwargs(self, request: ModelRequest) -> dict[str, Any]:
        opts = request.options_dict
        temperature: float | None = opts.get("temperature", self.cfg.temperature)
        kwargs: dict[str, Any] = {
            "max_new_tokens": int(opts.get("max_tokens", self.cfg.max_tokens)),
            "num_beams": int(opts.get("num_beams", self.cfg.num_beams) or 1),
            "do_sample": False,
        }
        if temperature is not None and temperature > 0:
            kwargs.update(do_sample=True, temperature=float(temperature))
        return kwargs

    def render(
        self, requests: Sequence[ModelRequest], processor: Any = None
    ) -> tuple[list[str], list[list[Any]]]:
        """The chat texts and PIL images this backend sends for ``requests`` (the shared
        builder of :mod:`diffcap.models.chat`; training uses the same one)."""
        processor = processor if processor is not None else self.load()[1]
        return render_requests(processor, requests)

    def generate_batch_sync(self, requests: Sequence[ModelRequest]) -> list[ModelResponse]:
        """One forward pass for ``requests`` (same generation settings). Blocking."""
        torch = require("torch")
        model, processor, device = self.load()
        gen = self.generation_kwargs(requests[0])
        texts, images = self.render(requests, processor)
        try:
            inputs = encode_prompts(processor, texts, images).to(device)
        except (ValueError, TypeError) as exc:
            raise RequestFailed(f"the processor rejected the request: {exc}") from exc
        tokenizer = getattr(processor, "tokenizer", processor)
        pad_id = (
            tokenizer.pad_token_id
            if tokenizer.pad_token_id is not None
            else (tokenizer.eos_token_id)
        )
        with self._generate_lock, torch.inference_mode():
            out = model.generate(**inputs, **gen, pad_token_id=pad_id)
        n_in = inputs["input_ids"].shape[1]
        prompt_lens = inputs["attention_mask"].sum(dim=1).tolist()
        eos = _eos_ids(model, tokenizer)
        return [
            self._response(row.tolist(), int(p), eos, pad_id, gen["max_new_tokens"], processor, r)
            for row, p, r in zip(out[:, n_in:], prompt_lens, requests, strict=True)
        ]

    def _response(
        self,
        tokens: list[int],
        prompt_tokens: int,
        eos: set[int],
        pad_id: int | None,
        max_new: int,
        processor: Any,
        request: ModelRequest | None = None,
    ) -> ModelResponse:
        stop = next((i for i, t in enumerate(tokens) if t in eos), None)
        if stop is not None:
            tokens, finish = tokens[: stop + 1], "stop"
        else:
            while tokens and tokens[-1] == pad_id:
                tokens = tokens[:-1]
            finish = "length" if len(tokens) >= max_new else "stop"
        text = processor.decode(tokens, skip_special_tokens=True).strip()
        if not text and not (request and request.options_dict.get("allow_empty")):
            raise RequestFailed(
                "the model returned empty content",
                retryable=False,
                hint="raise max_tokens, or check the model's chat template",
            )
        usage = Usage(requests=1, prompt_tokens=prompt_tokens, completion_tokens=len(tokens))
        return ModelResponse(text=text, model=self.model, usage=usage, finish_reason=finish)

    async def aclose(self) -> None:
        self._loaded = None
        self._batchers.clear()


#: A request waiting for its batch, and the future its answer goes to.
_Pending = tuple[ModelRequest, "asyncio.Future[ModelResponse]"]


class _MicroBatcher:
    """Collects concurrent requests of one event loop into batches of ``batch_size``."""

    def __init__(self, backend: TransformersBackend, loop: asyncio.AbstractEventLoop) -> None:
        self.backend = backend
        self.loop = loop
        self.queue: list[_Pending] = []
        self.worker: asyncio.Task[None] | None = None

    async def submit(self, request: ModelRequest) -> ModelResponse:
        fut: asyncio.Future[ModelResponse] = self.loop.create_future()
        self.queue.append((request, fut))
        if self.worker is None or self.worker.done():
            self.worker = self.loop.create_task(self._run())
        return await fut

    async def _run(self) -> None:
        # Runs while there is work, then ends (no task left pending when the loop closes).
        size = self.backend.cfg.batch_size
        while self.queue:
            await asyncio.sleep(self.backend.batch_wait_s)  # let concurrent callers enqueue
            items, self.queue = self.queue[:size], self.queue[size:]
            groups: dict[tuple[Any, ...], list[_Pending]] = {}
            for req, fut in items:  # one generate() call needs one set of settings
                key = tuple(sorted(self.backend.generation_kwargs(req).items()))
                groups.setdefault(key, []).append((req, fut))
            for group in groups.values():
                await self._run_group(group)

    async def _run_group(self, group: list[_Pending]) -> None:
        live = [(r, f) for r, f in group if not f.done()]
        if not live:
            return
        try:
            results = await asyncio.to_thread(
                self.backend.generate_batch_sync, [r for r, _ in live]
            )
        except Exception as exc:  # delivered to every caller of the batch
            if len(live) > 1 and isinstance(exc, RequestFailed) and not exc.retryable:
                # One bad request (e.g. empty output) must not fail its batch mates.
                for r, f in live:
                    await self._run_group([(r, f)])
                return
            for _, f in live:
                if not f.done():
                    f.set_exception(exc)
            return
        for (_, f), res in zip(live, results, strict=True):
            if not f.done():
                f.set_result(res)


def adapter_base(folder: Path) -> str | None:
    """The base model of a PEFT adapter folder (``adapter_config.json`` without a
    ``config.json``), else None."""
    cfg = folder / "adapter_config.json"
    if (folder / "config.json").is_file() or not cfg.is_file():
        return None
    try:
        base = json.loads(cfg.read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"{cfg}: unreadable adapter config ({exc})") from exc
    if not base:
        raise ModelUnavailable(f"{cfg}: no base_model_name_or_path", hint="re-save the adapter")
    return str(base)


def load_pretrained(tf: Any, source: str, dtype: Any, **kwargs: Any) -> tuple[Any, Any]:
    """(processor, model) of a model folder or hub id; an adapter folder loads its base
    model and merges the adapter in (the processor saved beside the adapter wins).
    ``kwargs`` go to ``from_pretrained`` (e.g. a quantization config)."""
    folder = Path(source)
    base = adapter_base(folder) if folder.is_dir() else None
    if base is None:
        processor = tf.AutoProcessor.from_pretrained(source)
        model = tf.AutoModelForImageTextToText.from_pretrained(source, dtype=dtype, **kwargs)
        return processor, model
    peft = require("peft", purpose="loading a LoRA adapter")
    own = any((folder / f).is_file() for f in ("preprocessor_config.json", "processor_config.json"))
    processor = tf.AutoProcessor.from_pretrained(source if own else base)
    model = tf.AutoModelForImageTextToText.from_pretrained(base, dtype=dtype, **kwargs)
    log.info("merging LoRA adapter %s into %s", source, base)
    return processor, peft.PeftModel.from_pretrained(model, source).merge_and_unload()


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if ids is None:
        ids = tokenizer.eos_token_id
    if ids is None:
        return set()
    return set(ids) if isinstance(ids, (list, tuple)) else {int(ids)}


def _source(model: str) -> str:
    """What ``from_pretrained`` gets: an expanded folder path, or the hub id."""
    return str(Path(model).expanduser()) if _looks_like_path(model) else model


def _looks_like_path(name: str) -> bool:
    """Local folders start with / . ~, exist, or look like a path (``models/x`` beside a
    ``models/`` folder, see :func:`~diffcap.models.hub.looks_like_local_path`); hub ids look
    like ``org/name``."""
    return (
        name.startswith(("/", ".", "~"))
        or looks_like_local_path(name)
        or Path(name).expanduser().is_dir()
    )
