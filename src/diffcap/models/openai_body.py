"""Chat-completions request bodies of the ``openai`` backend, serialised once to bytes.

Images go as base64 data URLs, each image base64'd and JSON-escaped once however many
requests use it (a sliding window sends each keyframe twice): the body is the JSON of a small
document with a slot per image, the cached JSON of each URL put in its slot.

    body = ChatBody(backend)          # reads the backend's cfg, model, api_base, extra_body
    body.build_body(request)          # bytes, what the SDK would send for build_payload()
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from diffcap.models.base import ImageInput, ModelRequest
from diffcap.models.openai_wire import dumps_body

log = logging.getLogger(__name__)

__all__ = ["CACHE_SIZE", "SLOT", "ChatBody"]

#: How many base64 data URLs to keep (a sliding window reuses each keyframe twice).
CACHE_SIZE = 64
#: Stands for image ``i``'s URL in the small JSON document that holds everything else; the
#: cached JSON of the URL goes in its place (random per process; build_body checks it).
SLOT = f"diffcap-image-{secrets.token_hex(8)}-"
SLOT_RE = re.compile(rb'"' + SLOT.encode() + rb'(\d+)"')


class ChatBody:
    """The request bodies of one backend (``owner``: its ``cfg``, ``model``, ``api_base`` and
    ``extra_body`` are read at each request)."""

    def __init__(self, owner: Any) -> None:
        self.owner = owner
        # "mime:sha256" -> (data URL, its JSON)
        self._cache: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self.warned_beams = False

    @property
    def cached_images(self) -> int:
        """Distinct images whose data URL is cached now."""
        return len(self._cache)

    def __getstate__(self) -> dict[str, Any]:
        # Picklable with its backend; the cache is rebuilt where it is used.
        return {**self.__dict__, "_cache": OrderedDict()}

    def _cached(self, image: ImageInput) -> tuple[str, bytes]:
        """(data URL, the URL as a JSON string in UTF-8), computed once per distinct image."""
        key = f"{image.mime}:{image.sha256}"
        entry = self._cache.get(key)
        if entry is None:
            url = f"data:{image.mime};base64,{base64.b64encode(image.data).decode('ascii')}"
            entry = (url, json.dumps(url, ensure_ascii=False).encode())
            self._cache[key] = entry
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return entry

    def data_url(self, image: ImageInput) -> str:
        """``data:image/jpeg;base64,...``, computed once per distinct image."""
        return self._cached(image)[0]

    def build_payload(self, request: ModelRequest) -> dict[str, Any]:
        """The chat-completions JSON body for ``request`` (images before the text, then
        ``extra_body`` merged on top, as the SDK's ``extra_body`` would be)."""
        return self.payload(request, lambda i: self.data_url(request.images[i]))

    def build_body(self, request: ModelRequest) -> bytes:
        """:meth:`build_payload` serialised as the SDK would, with each image's JSON taken from
        the cache (escaping 100 kB of base64 on every request costs more than the request)."""
        images = [self._cached(img)[1] for img in request.images]
        pieces = SLOT_RE.split(dumps_body(self.payload(request, lambda i: f"{SLOT}{i}")))
        # pieces = [json, b"0", json, b"1", json]: each slot exactly once, in order. Anything
        # else (extra_body replacing the messages, a prompt quoting a slot) takes the slow way.
        if pieces[1::2] != [str(i).encode() for i in range(len(images))]:
            return dumps_body(self.build_payload(request))
        pieces[1::2] = images
        return b"".join(pieces)

    def payload(self, request: ModelRequest, url_of: Callable[[int], str]) -> dict[str, Any]:
        opts = request.options_dict
        detail = opts.get("detail", self.owner.cfg.detail)
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        if request.images:
            parts: list[dict[str, Any]] = []
            for i in range(len(request.images)):
                image_url: dict[str, Any] = {"url": url_of(i)}
                if detail:
                    image_url["detail"] = detail
                parts.append({"type": "image_url", "image_url": image_url})
            parts.append({"type": "text", "text": request.prompt})
            messages.append({"role": "user", "content": parts})
        else:  # plain string: accepted by text-only servers too
            messages.append({"role": "user", "content": request.prompt})
        payload: dict[str, Any] = {"model": request.model or self.owner.model, "messages": messages}
        if opts.get("prefill"):  # the assistant's reply starts with it (vLLM/SGLang fields)
            messages.append({"role": "assistant", "content": opts["prefill"]})
            payload.update(continue_final_message=True, add_generation_prompt=False)
        max_tokens = opts.get("max_tokens", self.owner.cfg.max_tokens)
        # OpenAI itself wants max_completion_tokens (reasoning models refuse max_tokens);
        # compatible servers mostly know only max_tokens.
        payload["max_completion_tokens" if self.owner.api_base is None else "max_tokens"] = (
            max_tokens
        )
        temperature = opts.get("temperature", self.owner.cfg.temperature)
        if temperature is not None:
            payload["temperature"] = temperature
        num_beams = opts.get("num_beams", self.owner.cfg.num_beams)
        if num_beams and num_beams > 1 and not self.warned_beams:
            self.warned_beams = True
            log.warning(
                "num_beams=%s is not part of the OpenAI API and is not sent; pass the "
                "server's own parameter with extra_body, or use --backend transformers",
                num_beams,
            )
        payload.update(self.owner.extra_body)  # top-level merge, as the SDK merges extra_body
        return payload
