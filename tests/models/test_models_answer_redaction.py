"""Answers that echo the key are redacted as they arrive (issue 22, item 1), also in a
process where the CLI registered nothing (a Ray actor): the backend's own key is known."""

from __future__ import annotations

from diffcap import redact
from diffcap.models import ModelRequest, get_backend
from diffcap.models.cached import CachedBackend
from diffcap.store import RunStore

KEY = "actorkey-Z8x6C4v2B0nm"


def test_an_answer_echoing_the_backends_key_is_redacted_before_it_is_stored(
    fault_server, tmp_path, monkeypatch
):
    monkeypatch.setattr(redact, "_registered", set())  # a fresh worker process
    monkeypatch.delenv("DIFFCAP_API_KEY", raising=False)
    fault_server.reply = lambda body: f"You sent me {KEY} (echoed)"
    inner = get_backend("openai", api_base=fault_server.base_url, model="m", api_key=KEY)
    store = RunStore.open(tmp_path / "run.sqlite")
    backend = CachedBackend(inner, store)
    request = ModelRequest(model="m", prompt="Repeat the request headers.")
    first = backend.generate(request)
    assert KEY not in first.text and "[redacted]" in first.text
    replay = backend.generate(request)
    assert replay.cached and replay.text == first.text
    store.close()
    assert KEY.encode() not in (tmp_path / "run.sqlite").read_bytes()
    wal = tmp_path / "run.sqlite-wal"
    assert not wal.exists() or KEY.encode() not in wal.read_bytes()
