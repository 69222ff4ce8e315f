"""A scriptable loopback OpenAI-compatible server for fault-injection tests.

:class:`FaultServer` answers ``POST /v1/chat/completions`` on asyncio, in a background thread,
so sync and async tests can use it. By default every request gets a valid chat completion
with usage. Tests script faults::

    srv.fail("rate_limit", retry_after=0.2)        # the next request gets 429 + Retry-After
    srv.fail("server_error", "drop", at=[0, 1])    # requests #0 and #1 (0-based, counted
                                                   #   over all requests since reset())
    srv.fail("stall", "malformed", when="frame 3") # the next requests whose prompt text
                                                   #   contains "frame 3", in order
    srv.fail(Fault("status", status=401))          # any status with a JSON error body

Fault kinds: ``rate_limit`` (429, ``retry_after`` seconds in the header), ``server_error``
(500), ``stall`` (answers only after ``stall_s``, default 30 s: past any client timeout),
``drop`` (closes the connection without answering), ``malformed`` (200 with a non-JSON body),
``status`` (``status`` code with an error body; ``message=`` sets its text, as a server that
echoes what it got would), ``empty`` (200, empty content), ``refusal``
(200, content null and a refusal). Several faults passed to one call are used in order, one
per matching request.

What it received: ``srv.requests`` (list of :class:`Received`: index, path, headers, JSON
body, prompt text, number of images, fault applied, arrival time, answer time);
``srv.answered`` (the bodies, JSON with sorted keys, of requests answered in full, in order:
what was paid for); ``srv.max_in_flight`` is the most requests answered at once;
``srv.reset()`` clears requests, schedules, counters, latency and reply.

Answers: ``reply=`` callable(body) -> str (default: ``"ok: <first 8 words of the prompt>"``;
``routed_reply(rules)`` answers by what the prompt contains);
``latency=`` seconds added to every answer (a throughput benchmark sets it; 32+ concurrent
requests cost little: all waiting is asyncio). Usage in answers: prompt_tokens = words in all
text parts + 10 per image, completion_tokens = words of the answer; ``usage=`` callable(usage
dict) -> usage dict replaces it (a server that reports impossible numbers).

Use it standalone (``with FaultServer(latency=0.05) as srv: ... srv.base_url``) or through the
``fault_server`` fixture of :mod:`support.servers` (one server per session, reset before and
after each test).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = frozenset(
    {"rate_limit", "server_error", "stall", "drop", "malformed", "status", "empty", "refusal"}
)


@dataclass(frozen=True)
class Fault:
    kind: str
    status: int = 500
    retry_after: float | None = None
    stall_s: float = 30.0
    message: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; one of {sorted(FAULT_KINDS)}")


@dataclass
class Received:
    index: int
    path: str
    headers: dict[str, str]
    body: Any
    prompt: str
    images: int
    fault: str | None
    at: float = field(default_factory=time.monotonic)
    #: When a normal answer was written (None: not answered, or a fault was applied). Count
    #: re-paid calls by this, not by ``at``: a call in flight at a kill was never answered.
    answered_at: float | None = None


def _text_and_images(body: Any) -> tuple[str, int]:
    texts, images = [], 0
    for msg in (body or {}).get("messages", []) if isinstance(body, dict) else []:
        content = msg.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        for part in content or []:
            if part.get("type") == "text":
                texts.append(part.get("text", ""))
            elif part.get("type") in ("image_url", "image"):
                images += 1
    return "\n".join(texts), images


def default_reply(body: Any) -> str:
    text, _ = _text_and_images(body)
    return "ok: " + " ".join(text.split()[:8])


def prompt_text(body: Any) -> str:
    """All text parts of a chat request (system and user), joined by newlines."""
    return _text_and_images(body)[0]


def routed_reply(
    rules: list[tuple[str, str | Callable[[str], str]]], default: str | None = None
) -> Callable[[Any], str]:
    """A ``reply=`` that answers by prompt: the first rule whose key occurs in the prompt
    text gives the answer (a string, or a callable of the prompt); no match gives
    ``default``, else ``"<unscripted: ...>"`` with the prompt's start, which a test's
    expected numbers will not match (and its output shows what was asked)."""

    def reply(body: Any) -> str:
        text = prompt_text(body)
        for key, answer in rules:
            if key in text:
                return answer(text) if callable(answer) else answer
        return default if default is not None else f"<unscripted: {text[:120]}>"

    return reply


class FaultServer:
    """See the module docstring."""

    def __init__(self, *, latency: float = 0.0, reply: Callable[[Any], str] | None = None) -> None:
        self.latency = latency
        self.reply = reply or default_reply
        #: A model window (tokens, counted as in usage): a request whose prompt plus
        #: max_tokens exceeds it gets vLLM's 400 "maximum context length" answer.
        self.context_limit: int | None = None
        #: List ``max_model_len`` (= context_limit) in ``GET /v1/models``, as vLLM does.
        self.advertise_context = False
        #: Entries ``GET /v1/models`` lists (a callable is asked at each listing), if set.
        self.models: list[dict[str, Any]] | Callable[[], list[dict[str, Any]]] | None = None
        self.refused_context = 0
        self.usage: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self.requests: list[Received] = []
        #: Prompts of the requests answered in full (200 written), in order: what was paid
        #: for. A request in flight when its client died arrived but may not be here.
        self.answered: list[str] = []
        self._lock = threading.Lock()
        self._by_index: dict[int, Fault] = {}
        self._by_key: list[tuple[str, list[Fault]]] = []
        self._next: list[Fault] = []
        self._count = 0
        #: Requests being answered now, and the most seen at once (since reset()).
        self.in_flight = 0
        self.max_in_flight = 0
        self._epoch = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    # --- control -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def fail(
        self,
        *faults: str | Fault,
        at: int | list[int] | None = None,
        when: str | None = None,
        retry_after: float | None = None,
        status: int = 500,
        stall_s: float = 30.0,
    ) -> None:
        """Schedule faults: for the next requests, for request indexes ``at``, or for the
        next requests whose prompt contains ``when``."""
        fs = [
            f
            if isinstance(f, Fault)
            else Fault(f, status=status, retry_after=retry_after, stall_s=stall_s)
            for f in faults
        ]
        with self._lock:
            if at is not None:
                idx = [at] if isinstance(at, int) else list(at)
                if len(idx) != len(fs) and len(fs) != 1:
                    raise ValueError("give one fault, or one fault per index")
                for i, n in enumerate(idx):
                    self._by_index[n] = fs[0] if len(fs) == 1 else fs[i]
            elif when is not None:
                self._by_key.append((when, fs))
            else:
                self._next.extend(fs)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.answered.clear()
            self._by_index.clear()
            self._by_key.clear()
            self._next.clear()
            self._count = 0
            # Requests still open from before (a stall) no longer count.
            self._epoch += 1
            self.in_flight = self.max_in_flight = 0
        self.latency = 0.0
        self.reply = default_reply
        self.context_limit = None
        self.advertise_context = False
        self.models = None
        self.refused_context = 0
        self.usage = None

    def _pick_fault(self, prompt: str) -> tuple[int, Fault | None]:
        with self._lock:
            index = self._count
            self._count += 1
            if index in self._by_index:
                return index, self._by_index.pop(index)
            for key, fs in self._by_key:
                if key in prompt and fs:
                    return index, fs.pop(0)
            if self._next:
                return index, self._next.pop(0)
        return index, None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> FaultServer:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=256)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="fault-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return

        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- HTTP ----------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: many requests per connection
                request = await _read_request(reader)
                if request is None:
                    break
                keep = await self._respond(writer, *request)
                if not keep:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _respond(
        self,
        writer: asyncio.StreamWriter,
        method: str,
        path: str,
        headers: dict[str, str],
        raw: bytes,
    ) -> bool:
        if method == "GET" and path.rstrip("/") in ("/health", "/v1/models"):
            data = []
            if self.advertise_context and self.context_limit:
                data = [{"id": "m", "object": "model", "max_model_len": self.context_limit}]
            if self.models is not None:
                data = self.models() if callable(self.models) else self.models
            await _write(writer, 200, {"status": "ok", "data": data})
            return True
        if not (method == "POST" and path.endswith("/chat/completions")):
            await _write(writer, 404, {"error": {"message": f"no route {method} {path}"}})
            return True
        try:
            body = json.loads(raw or b"null")
        except json.JSONDecodeError:
            body = None
        prompt, n_images = _text_and_images(body)
        index, fault = self._pick_fault(prompt)
        received = Received(
            index, path, headers, body, prompt, n_images, fault.kind if fault else None
        )
        self.requests.append(received)
        epoch = self._epoch
        self.in_flight += 1  # only touched from the server's own loop
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            if fault is not None:
                return await self._apply(writer, fault, body, prompt, n_images)
            if await self._refuse_if_over(writer, body, prompt, n_images):
                return True
            await _write(writer, 200, self._completion(body, prompt, n_images, self.reply(body)))
            self.answered.append(json.dumps(body, sort_keys=True))
            received.answered_at = time.monotonic()
            return True
        finally:
            if epoch == self._epoch:
                self.in_flight -= 1

    async def _apply(
        self, writer: asyncio.StreamWriter, fault: Fault, body: Any, prompt: str, n_images: int
    ) -> bool:
        kind = fault.kind
        if kind == "drop":
            writer.transport.abort()
            return False
        if kind == "stall":
            await asyncio.sleep(fault.stall_s)
            kind = "ok"
        if kind == "rate_limit":
            extra = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            await _write(
                writer,
                429,
                {"error": {"message": "rate limited (scripted)", "type": "rate_limit"}},
                extra,
            )
        elif kind in ("server_error", "status"):
            status = 500 if kind == "server_error" else fault.status
            message = fault.message or f"scripted HTTP {status}"
            await _write(writer, status, {"error": {"message": message}})
        elif kind == "malformed":
            await _write_raw(writer, 200, b"<html>this is not json", "application/json")
        elif kind == "empty":
            await _write(writer, 200, self._completion(body, prompt, n_images, ""))
        elif kind == "refusal":
            data = self._completion(body, prompt, n_images, "")
            data["choices"][0]["message"].update(content=None, refusal="I cannot help with that.")
            await _write(writer, 200, data)
        else:
            await _write(writer, 200, self._completion(body, prompt, n_images, self.reply(body)))
        return True

    async def _refuse_if_over(
        self, writer: asyncio.StreamWriter, body: Any, prompt: str, n_images: int
    ) -> bool:
        """Over ``context_limit``: vLLM's 400 is written (True). Else nothing (False)."""
        if not self.context_limit:
            return False
        asked = int((body or {}).get("max_tokens") or 0) if isinstance(body, dict) else 0
        tokens = len(prompt.split()) + 10 * n_images
        if tokens + asked <= self.context_limit:
            return False
        self.refused_context += 1
        message = (
            f"This model's maximum context length is {self.context_limit} tokens. However, "
            f"you requested {tokens + asked} tokens ({tokens} in the messages, {asked} in the "
            "completion). Please reduce the length of the messages or completion."
        )
        await _write(writer, 400, {"error": {"message": message, "type": "BadRequestError"}})
        return True

    def _completion(self, body: Any, prompt: str, n_images: int, text: str) -> dict[str, Any]:
        prompt_tokens = len(prompt.split()) + 10 * n_images
        completion_tokens = len(text.split())
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": (body or {}).get("model", "fault-model")
            if isinstance(body, dict)
            else "fault-model",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text},
                }
            ],
            "usage": self.usage(usage) if self.usage is not None else usage,
        }


async def _read_request(reader: asyncio.StreamReader):
    line = await reader.readline()
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0") or 0)
    raw = await reader.readexactly(length) if length else b""
    return method, path, headers, raw


async def _write(
    writer: asyncio.StreamWriter, status: int, data: Any, extra: dict[str, str] | None = None
) -> None:
    await _write_raw(writer, status, json.dumps(data).encode(), "application/json", extra)


async def _write_raw(
    writer: asyncio.StreamWriter,
    status: int,
    payload: bytes,
    ctype: str,
    extra: dict[str, str] | None = None,
) -> None:
    head = [
        f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}",
        f"Content-Type: {ctype}",
        f"Content-Length: {len(payload)}",
        "Connection: keep-alive",
    ]
    head += [f"{k}: {v}" for k, v in (extra or {}).items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
    await writer.drain()
