"""What a model can read: windows from configs, servers and the known table; token counts;
"over the context" answers of real server texts as a distinct, recoverable fault."""

from __future__ import annotations

import json

import pytest

from diffcap.errors import ContextExceeded, fault_kind
from diffcap.models import ModelRequest, get_backend
from diffcap.models.context import (
    FALLBACK_CONTEXT,
    ContextWindow,
    EstimateCounter,
    choose_window,
    context_from_config,
    context_of_folder,
    is_context_error,
    known_context,
    load_tokenizer_counter,
    parse_context_error,
)
from diffcap.models.retry import RetryPolicy

# The texts real servers answer with (vLLM old and new, transformers serve, OpenAI, SGLang).
SERVER_TEXTS = [
    (
        "This model's maximum context length is 4096 tokens. However, you requested 5000 "
        "tokens (4000 in the messages, 1000 in the completion). Please reduce the length of "
        "the messages or completion.",
        4096,
        5000,
    ),
    (
        "The prompt has 2619 tokens, but the model takes at most 2048, prompt and answer "
        "(`--max-model-len`).",
        2048,
        2619,
    ),
    (
        "'max_tokens' or 'max_completion_tokens' is too large: 1024. This model's maximum "
        "context length is 2048 tokens and your request has 1500 input tokens (1024 > 2048 - "
        "1500).",
        2048,
        1500,
    ),
    (
        "The input (9000 tokens) is longer than the model's context length (8192 tokens).",
        8192,
        9000,
    ),
]


@pytest.mark.parametrize(("text", "limit", "asked"), SERVER_TEXTS)
def test_server_texts_are_read_as_over_the_context(text, limit, asked):
    assert is_context_error(text)
    assert parse_context_error(text) == (limit, asked)


def test_other_errors_are_not_context_errors():
    for text in ("model 'x' not found", "invalid image", "rate limited", ""):
        assert not is_context_error(text)


def test_windows_from_configs_and_tables(tmp_path):
    assert context_from_config({"text_config": {"max_position_embeddings": 4096}}) == 4096
    assert context_from_config({"max_position_embeddings": 2048, "n_positions": 1}) == 2048
    # Tokenizers write 1e30 for "no limit": that is not a window.
    assert context_from_config({"model_max_length": 1e30}) is None
    (tmp_path / "config.json").write_text(json.dumps({"max_position_embeddings": 3000}))
    assert context_of_folder(tmp_path) == ContextWindow(3000, f"config.json of {tmp_path}")
    assert known_context("gpt-4o-mini-2024-07-18").tokens == 128_000
    assert known_context("my-own-model") is None


def test_the_setting_wins_but_never_above_what_the_model_reports(caplog):
    reported = ContextWindow(4096, "server")
    assert choose_window(2000, reported, "m") == ContextWindow(2000, "model.context_tokens")
    assert choose_window(9000, reported, "m") == reported
    assert choose_window(None, reported, "gpt-4o") == reported
    assert choose_window(None, None, "gpt-4o").tokens == 128_000
    fallback = choose_window(None, None, "unknown-model")
    assert fallback.tokens == FALLBACK_CONTEXT
    assert "model.context_tokens" in caplog.text


def test_estimate_errs_high_on_english_and_tokenizer_counts_exactly(tiny_llava_dir):
    text = "A man in a red jacket walks a brown dog along a sandy beach at sunset."
    assert EstimateCounter().count(text) == 28  # 70 bytes / 2.5
    counter = load_tokenizer_counter(tiny_llava_dir)
    assert counter is not None
    tok = counter.tokenizer
    assert counter.count(text) == len(tok.encode(text, add_special_tokens=False)) > 0
    assert load_tokenizer_counter("/no/such/folder") is None


def test_http_backend_reads_the_window_the_server_lists(fault_server):
    fault_server.context_limit = 3072
    fault_server.advertise_context = True
    backend = get_backend("openai", api_base=fault_server.base_url, model="m")
    assert backend.context_window().tokens == 3072
    assert "/models" in backend.context_window().source
    # A model the server does not list: the setting, else the fallback.
    other = get_backend("openai", api_base=fault_server.base_url, model="x", context_tokens=999)
    assert other.context_window() == ContextWindow(999, "model.context_tokens")


def test_http_backend_of_a_served_folder_uses_its_config_and_tokenizer(tiny_llava_dir):
    backend = get_backend("openai", api_base="http://127.0.0.1:9/v1", model=str(tiny_llava_dir))
    assert backend.context_window().tokens == 8192
    assert backend.token_counter() is not None
    # The folder's processor: 16 patch tokens (+ the image token's own, expanded away).
    assert backend.image_token_cost() in (16, 17)


def test_over_the_context_is_a_distinct_recoverable_fault(fault_server):
    fault_server.context_limit = 50
    backend = get_backend(
        "openai",
        api_base=fault_server.base_url,
        model="m",
        retry=RetryPolicy(max_retries=3, base_s=0.01),
    )
    request = ModelRequest("m", "word " * 80, options=ModelRequest.make_options({"max_tokens": 8}))
    with pytest.raises(ContextExceeded) as info:
        backend.generate(request)
    exc = info.value
    assert (exc.limit, exc.tokens) == (50, 88)
    assert fault_server.refused_context == 1  # not retried blindly
    assert fault_kind(exc) == "transient"  # never a permanent failure of a video
