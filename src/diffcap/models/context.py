"""What a model can read: its context window, and how many tokens a prompt costs.

A backend reports its window as a :class:`ContextWindow` (tokens and where the number came
from). Sources, best first: the ``model.context_tokens`` setting (the user's word; capped by
what the model or server reports), the model's own config (in-process, or a local model
folder that a server serves by path), the server (vLLM's ``/v1/models`` ``max_model_len``),
a table of known hosted models, else :data:`FALLBACK_CONTEXT` with a warning.

Tokens are counted with the model's tokenizer where one can be loaded (the model folder, or
``model.tokenizer``), else estimated: one token per :data:`ESTIMATE_BYTES_PER_TOKEN` bytes
of UTF-8 (English BPE averages ~4 bytes per token, so this over-counts; CJK text runs
2-3 bytes per token). A pre-flight probe can measure the real ratio (see
:mod:`diffcap.captioning.budget`).

    window = context_from_config({"text_config": {"max_position_embeddings": 4096}})  # 4096
    counter = EstimateCounter()
    counter.count("A dog runs.")      # 5
    parse_context_error("The prompt has 2619 tokens, but the model takes at most 2048")
    # -> (2048, 2619)
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

#: Tokens assumed when nothing says how long the context is (documented in docs/long-videos.md).
FALLBACK_CONTEXT = 8192
#: UTF-8 bytes per token of the conservative estimate.
ESTIMATE_BYTES_PER_TOKEN = 2.5
#: Config values above this are "no limit" sentinels (tokenizers use 1e30), not windows.
_SANE_MAX = 50_000_000

#: Context windows of hosted models by name prefix (longest prefix wins), in tokens.
KNOWN_CONTEXT: dict[str, int] = {
    "gpt-4o": 128_000,
    "gpt-4o-mini": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-4-turbo": 128_000,
    "gpt-4-vision": 128_000,
    "gpt-5": 400_000,
    "o1": 200_000,
    "o3": 200_000,
    "o4-mini": 200_000,
    "claude-3": 200_000,
    "claude-sonnet-4": 200_000,
    "claude-opus-4": 200_000,
    "gemini-1.5": 1_000_000,
    "gemini-2": 1_000_000,
    "qwen/qwen2-vl": 32_768,
    "qwen/qwen2.5-vl": 128_000,
    "llava-hf/llava-interleave-qwen-0.5b-hf": 32_768,
    "llava-hf/llava-1.5": 4_096,
    "llava-hf/llava-v1.6": 4_096,
    "lin-chen/sharecaptioner-video": 32_768,
}

#: Config keys that hold a model's window, in order of preference.
_CONFIG_KEYS = (
    "max_position_embeddings",
    "max_sequence_length",
    "n_positions",
    "seq_length",
    "max_seq_len",
    "model_max_length",
)


@dataclass(frozen=True)
class ContextWindow:
    """A model's context window in tokens, and where the number came from."""

    tokens: int
    source: str

    def __str__(self) -> str:
        return f"{self.tokens:,} tokens ({self.source})"


class TokenCounter(Protocol):
    """Counts the tokens of a text (no special tokens, no chat template)."""

    name: str

    def count(self, text: str) -> int: ...


@dataclass
class EstimateCounter:
    """``ceil(utf8 bytes / bytes_per_token)``: no tokenizer needed, errs on the high side."""

    bytes_per_token: float = ESTIMATE_BYTES_PER_TOKEN
    name: str = "estimate"

    def count(self, text: str) -> int:
        return math.ceil(len(text.encode("utf-8")) / self.bytes_per_token)


class TokenizerCounter:
    """Exact counts with a Hugging Face tokenizer (``len(encode(text))``, no special tokens)."""

    def __init__(self, tokenizer: Any, name: str) -> None:
        self.tokenizer = tokenizer
        self.name = name

    def count(self, text: str) -> int:
        if not text:
            return 0
        return len(self.tokenizer.encode(text, add_special_tokens=False))


def context_from_config(config: dict[str, Any]) -> int | None:
    """The window a model config states (text config first for vision-language models)."""
    for section in (config.get("text_config"), config.get("llm_config"), config):
        if not isinstance(section, dict):
            continue
        for key in _CONFIG_KEYS:
            value = section.get(key)
            if isinstance(value, (int, float)) and 0 < value < _SANE_MAX:
                return int(value)
    return None


def context_of_folder(folder: str | Path) -> ContextWindow | None:
    """The window of a local model folder (its config.json, else tokenizer_config.json)."""
    path = Path(folder).expanduser()
    for name in ("config.json", "tokenizer_config.json"):
        try:
            data = json.loads((path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        tokens = context_from_config(data) if isinstance(data, dict) else None
        if tokens:
            return ContextWindow(tokens, f"{name} of {path}")
    return None


def known_context(model: str) -> ContextWindow | None:
    """The window of a known hosted model, by the longest matching name prefix."""
    name = model.lower().strip()
    best = max((p for p in KNOWN_CONTEXT if name.startswith(p)), key=len, default=None)
    if best is None:
        return None
    return ContextWindow(KNOWN_CONTEXT[best], f"known model table: {best}")


def choose_window(setting: int | None, reported: ContextWindow | None, model: str) -> ContextWindow:
    """The window to plan with: the setting (never above what the model reports), else the
    reported one, else the known table, else :data:`FALLBACK_CONTEXT` marked as a fallback
    (not planned with until a server refuses a request; logged as a warning)."""
    if setting is not None:
        if reported is not None and reported.tokens < setting:
            log.warning(
                "model.context_tokens=%d is more than %s reports; using %d",
                setting,
                reported.source,
                reported.tokens,
            )
            return reported
        return ContextWindow(setting, "model.context_tokens")
    if reported is not None:
        return reported
    known = known_context(model)
    if known is not None:
        return known
    log.warning(
        "the context window of model %r is unknown: requests are sent as they are until the "
        "server refuses one as over its context (set model.context_tokens to plan for it)",
        model,
    )
    return ContextWindow(FALLBACK_CONTEXT, "fallback: unknown model")


def load_tokenizer_counter(source: str | Path) -> TokenizerCounter | None:
    """A counter from a tokenizer folder or cached hub id; None when it cannot be loaded
    (no ``transformers``, nothing there, offline)."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        return None
    path = Path(source).expanduser()
    if not path.is_dir() and str(source).startswith(("/", ".", "~")):
        return None
    try:
        tok = AutoTokenizer.from_pretrained(str(path if path.is_dir() else source))
    except Exception as exc:  # offline hub id, a folder without a tokenizer, ...
        log.info("no tokenizer from %s (%s); estimating token counts", source, exc)
        return None
    return TokenizerCounter(tok, f"tokenizer of {source}")


# --- "over the context" answers of servers ------------------------------------------------

_LIMIT_PATTERNS = (
    # transformers serve
    re.compile(r"prompt has (\d+) tokens, but the model takes at most (\d+)", re.I),
    # vLLM's engine (images can push a prompt over)
    re.compile(r"prompt \(length (\d+)\) is longer than the maximum model length of (\d+)", re.I),
)
#: (limit, tokens) in this order.
_LIMIT_FIRST = (re.compile(r"must be <= (\d+)\. Given: (\d+)", re.I),)  # TGI
_MAX_PATTERNS = (
    re.compile(r"maximum context length is (\d+)", re.I),  # vLLM, OpenAI
    re.compile(r"takes at most (\d+)", re.I),
    re.compile(r"context length \((\d+) tokens?\)", re.I),  # SGLang
    re.compile(r"context (?:window|size|length) (?:is |of )?(\d+)", re.I),
)
_MARKERS = (
    "context length",
    "context_length_exceeded",
    "context window",
    "context size",
    "takes at most",
    "too many tokens",
    "maximum context",
    "reduce the length",
    "exceeds the available context",
    "maximum model length",
    "max_new_tokens` must be <=",
)
_REQUESTED = re.compile(r"(\d+) (?:input )?tokens", re.I)


def is_context_error(text: str) -> bool:
    """Whether a server's error text says the request was over the model's context."""
    low = text.lower()
    return any(m in low for m in _MARKERS)


def parse_context_error(text: str) -> tuple[int | None, int | None]:
    """(the model's limit, the request's tokens) from an "over the context" error text;
    either may be None when the server does not say."""
    for pattern in _LIMIT_PATTERNS:
        m = pattern.search(text)
        if m:
            return int(m.group(2)), int(m.group(1))
    for pattern in _LIMIT_FIRST:
        m = pattern.search(text)
        if m:
            return int(m.group(1)), int(m.group(2))
    limit = None
    for pattern in _MAX_PATTERNS:
        m = pattern.search(text)
        if m:
            limit = int(m.group(1))
            break
    asked = [int(n) for n in _REQUESTED.findall(text) if limit is None or int(n) != limit]
    return limit, (max(asked) if asked else None)


# --- what servers and model folders say ---------------------------------------------------

_SERVER_KEYS = ("max_model_len", "context_length", "max_context_length", "context_window")


def server_context(
    api_base: str, model: str, key: str | None, timeout_s: float = 3.0
) -> int | None:
    """The window an OpenAI-compatible server lists for ``model`` in ``GET /models``
    (vLLM: ``max_model_len``; others: ``context_length``...); None when it says nothing."""
    import urllib.request

    url = api_base.rstrip("/") + "/models"
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key or 'none'}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            data = json.loads(resp.read(2_000_000))
    except (OSError, ValueError) as exc:
        log.debug("GET %s: %s", url, exc)
        return None
    entries = data.get("data") if isinstance(data, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("id") != model:
            continue
        for k in _SERVER_KEYS:
            value = entry.get(k)
            if isinstance(value, int) and 0 < value < _SANE_MAX:
                return value
    return None
