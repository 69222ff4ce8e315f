"""The IVF index behind ``dedup``'s ANN path (numpy only; see :mod:`diffcap.stages.dedup`).

k-means lists of kept vectors, scanned list by list with float32 matrix products, and the
in-order resolution of a block from sparse in-block pairs.

    c = train_centroids(x, auto_nlist(len(x)), seed=0, size=65_536, iters=8)
    pool = IvfPool(c, nprobe=4)
    own, best_sim, best_row, pairs = pool.scan(block, 0.9)
    keep, dup, sim = resolve_sparse(best_sim, best_row, pairs, 0.9)
    pool.add(kept_rows, x[kept_rows], own[kept_local])
"""

from __future__ import annotations

import numpy as np

__all__ = ["IvfPool", "auto_nlist", "resolve_sparse", "train_centroids"]


def auto_nlist(n: int) -> int:
    """Lists for ``n`` candidates: ~sqrt(n) balances the centroid product against list scans."""
    return int(np.clip(round(np.sqrt(n)), 1, 2048))


def train_centroids(x: np.ndarray, nlist: int, seed: int, size: int, iters: int) -> np.ndarray:
    """Spherical k-means on a fixed-seed sample: same input -> same centroids -> same lists."""
    rng = np.random.default_rng(seed)
    m = min(len(x), max(size, nlist))
    sample = x[np.sort(rng.choice(len(x), m, replace=False))]
    c = sample[np.sort(rng.choice(m, nlist, replace=False))].copy()
    for _ in range(iters):
        assign = (sample @ c.T).argmax(axis=1)
        order = np.argsort(assign, kind="stable")
        used, starts = np.unique(assign[order], return_index=True)
        sums = np.add.reduceat(sample[order], starts, axis=0)
        c[used] = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return np.ascontiguousarray(c, dtype=np.float32)


class IvfPool:
    """Kept vectors in k-means lists (float32, numpy). A block is scanned list by list: the
    block rows probing a list are compared with all of its vectors in one matrix product, so
    each list is read once per block and scores are exact float32 inner products."""

    def __init__(self, centroids: np.ndarray, nprobe: int) -> None:
        self.centroids = centroids
        self.nprobe = max(1, min(nprobe, len(centroids)))
        d = centroids.shape[1]
        self.vecs = [np.empty((0, d), dtype=np.float32) for _ in range(len(centroids))]
        self.rows = [np.empty(0, dtype=np.int64) for _ in range(len(centroids))]
        self.size = np.zeros(len(centroids), dtype=np.int64)

    def add(self, rows: np.ndarray, vecs: np.ndarray, lists: np.ndarray) -> None:
        for lst, idx in _groups(lists):
            k, m = self.size[lst], len(idx)
            if k + m > len(self.rows[lst]):  # grow by doubling: amortised O(1) appends
                cap = max(2 * len(self.rows[lst]), k + m, 16)
                self.vecs[lst] = np.resize(self.vecs[lst], (cap, self.vecs[lst].shape[1]))
                self.rows[lst] = np.resize(self.rows[lst], cap)
            self.vecs[lst][k : k + m] = vecs[idx]
            self.rows[lst][k : k + m] = rows[idx]
            self.size[lst] = k + m

    def scan(
        self, block: np.ndarray, threshold: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
        """Per row: own list, best kept match in its probed lists (sim, input row), and the
        in-block pairs (i, j, sim), j < i, sim >= threshold, j in a list that i probes."""
        b, p = len(block), self.nprobe
        coarse = block @ self.centroids.T
        own = coarse.argmax(axis=1)
        probe = own[:, None] if p == 1 else np.argpartition(-coarse, p - 1, axis=1)[:, :p]
        mates = dict(_groups(own))  # block rows by the list they will join if kept
        best = np.full(b * p, -np.inf, dtype=np.float32)
        arg = np.full(b * p, -1, dtype=np.int64)
        edges: list[tuple[np.ndarray, ...]] = []
        for lst, pairs in _groups(probe.ravel()):
            q = pairs // p
            qv = block[q]
            if k := self.size[lst]:
                sims = qv @ self.vecs[lst][:k].T
                j = sims.argmax(axis=1)
                best[pairs], arg[pairs] = sims[np.arange(len(q)), j], self.rows[lst][j]
            if (m := mates.get(lst)) is not None:
                sims = qv @ block[m].T
                ii, jj = np.nonzero((sims >= threshold) & (m[None, :] < q[:, None]))
                edges.append((q[ii], m[jj], sims[ii, jj]))
        best2, arg2 = best.reshape(b, p), arg.reshape(b, p)
        j = best2.argmax(axis=1)
        rows = np.arange(b)
        return own, best2[rows, j], arg2[rows, j], _concat_edges(edges)


def _groups(labels: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``(label, positions)`` for each distinct label, positions in increasing order."""
    if not len(labels):
        return []
    order = np.argsort(labels, kind="stable")
    values, starts = np.unique(labels[order], return_index=True)
    return list(zip(values.tolist(), np.split(order, starts[1:]), strict=True))


def _concat_edges(edges: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    if not edges:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    i, j, s = (np.concatenate(parts) for parts in zip(*edges, strict=True))
    order = np.lexsort((j, i))
    return i[order], j[order], s[order]


def resolve_sparse(
    pool_sim: np.ndarray, pool_idx: np.ndarray, edges: tuple[np.ndarray, ...], threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy decisions for one block in order, from each row's best kept match and the
    sparse in-block pairs over the threshold (as ``dedup._resolve_block``, which is dense).

    Returns (keep, duplicate row: pool row or -(local index)-2 for an in-block match, sim).
    """
    keep = pool_sim < threshold
    dup, best = pool_idx.astype(np.int64), pool_sim.astype(np.float32)
    ei, ej, es = edges
    if len(ei):
        # Rows in order: j < i, so every j is decided before the rows that point at it.
        for i, js in _groups(ei):
            if keep[i] and keep[ej[js]].any():
                keep[i] = False
        live = keep[ej] & ~keep[ei]
        ei, ej, es = ei[live], ej[live], es[live]
        for i, js in _groups(ei):
            k = js[es[js].argmax()]
            if es[k] > best[i]:
                dup[i], best[i] = -ej[k] - 2, es[k]
    return keep, dup, best
