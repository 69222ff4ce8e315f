"""A served model's identity (issue 22, item 2): a server that now serves other weights under
the same name (another ``root``, ``created`` or ``revision`` in ``GET /v1/models``) gets its
requests again instead of a replay of the old answers; a listing that only stamps the time
(vLLM, SGLang, llama.cpp) or says nothing keeps replaying."""

from __future__ import annotations

import time

from diffcap.models import ModelRequest, get_backend
from diffcap.models.cached import CachedBackend
from diffcap.models.identity import served_identity
from diffcap.store import RunStore

VLLM = {"id": "tiny", "object": "model", "owned_by": "vllm", "root": "/weights/v1"}


def _ask(server, store, prompt: str = "describe the frame") -> bool:
    """One request through a new backend (as a new worker or rerun has); True if replayed."""
    inner = get_backend("openai", api_base=server.base_url, model="tiny", api_key="k")
    return CachedBackend(inner, store).generate(ModelRequest(model="tiny", prompt=prompt)).cached


def test_new_weights_under_the_same_served_name_are_asked_again(fault_server, tmp_path):
    store = RunStore.open(tmp_path / "run.sqlite")
    fault_server.models = [{**VLLM, "created": int(time.time())}]  # vLLM: the listing's time
    assert not _ask(fault_server, store)
    time.sleep(1.1)  # a later listing stamps a later time: still the same weights
    fault_server.models = [{**VLLM, "created": int(time.time())}]
    assert _ask(fault_server, store)
    assert len(fault_server.requests) == 1
    # vLLM restarted on other weights, served under the same --served-model-name
    fault_server.models = [{**VLLM, "root": "/weights/v2", "created": int(time.time())}]
    assert not _ask(fault_server, store)
    assert _ask(fault_server, store)  # ...and those answers replay in turn
    # an OpenAI-style snapshot date, then an Ollama tag pulled again (a new modified time)
    for created in (1_700_000_000, 1_700_000_000, 1_710_000_000):
        fault_server.models = [{"id": "tiny", "created": created, "owned_by": "system"}]
        _ask(fault_server, store)
    assert len(fault_server.requests) == 4  # v1, v2, the 1.70e9 snapshot, the 1.71e9 pull
    fault_server.models = [{"id": "tiny", "revision": "abc123", "created": 0}]
    assert not _ask(fault_server, store)
    store.close()


def test_a_listing_without_weights_keeps_the_name_as_the_identity(fault_server, tmp_path):
    store = RunStore.open(tmp_path / "run.sqlite")
    assert not _ask(fault_server, store)  # the server lists nothing
    fault_server.models = [{"id": "other", "root": "/weights/x"}, {"id": "tiny", "created": 0}]
    assert _ask(fault_server, store)  # nothing that names weights: same key, a replay
    assert served_identity(fault_server.base_url, "tiny", "k") is None
    assert served_identity(fault_server.base_url, "other", "k") is not None
    store.close()


def test_a_real_transformers_serve_lists_its_model_without_a_changing_identity(
    tiny_llava_server,
):
    """``transformers serve DIR`` lists the folder with ``created`` 0 and a load status: no
    served identity (the folder's own fingerprint covers its weights), the same every time."""
    import json
    import urllib.request

    with urllib.request.urlopen(tiny_llava_server.base_url + "/models", timeout=10) as resp:
        listed = [e["id"] for e in json.loads(resp.read())["data"]]
    assert listed == [tiny_llava_server.model]
    for _ in range(2):
        assert served_identity(tiny_llava_server.base_url, tiny_llava_server.model, None) is None
