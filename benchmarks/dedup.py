"""Benchmark: greedy semantic de-duplication, ANN (numpy IVF) vs exact (numpy).

Synthetic 384-d unit vectors shaped like sentence embeddings of short captions: topics
(clusters, within-topic cosine ~0.5) plus planted near-duplicates (copies of an earlier row with
noise, cosine 0.85-0.99, so some fall just under and some just over the threshold).

    python benchmarks/dedup.py                      # 1M with ANN, exact on 50k, agreement
    python benchmarks/dedup.py --repeat 2             # checks two runs decide the same
    python benchmarks/dedup.py --n 200000 --exact-n 20000 --nprobe 4

Prints throughput (vectors/s) per path and the ANN-vs-exact agreement on the first
``--agree-n`` candidates (greedy decisions on a prefix depend only on that prefix, so this is
the agreement of the full ANN run on those decisions).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from diffcap.stages.dedup import AnnOptions, greedy_dedup


def synthetic_embeddings(
    n: int,
    dim: int = 384,
    *,
    dup_fraction: float = 0.2,
    topic_size: int = 50,
    decay: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """(n, dim) float32 unit rows: clustered topics plus planted near-duplicates.

    Like sentence embeddings, the variance falls off as a power law (eigenvalue i ~ i^-decay,
    in a random rotation) around a shared mean direction; ``decay=0`` is isotropic noise, the
    worst case for graph indexes.
    """
    rng = np.random.default_rng(seed)
    scale = (np.arange(1, dim + 1, dtype=np.float32) ** (-decay / 2))[None, :]
    scale /= np.sqrt((scale**2).sum())
    rot = np.linalg.qr(rng.standard_normal((dim, dim)))[0].astype(np.float32)
    mean = rng.standard_normal(dim).astype(np.float32)
    mean *= 0.4 / np.linalg.norm(mean)
    n_topics = max(1, n // topic_size)
    centers = rng.standard_normal((n_topics, dim), dtype=np.float32) * scale
    x = np.empty((n, dim), dtype=np.float32)
    chunk = 100_000
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        # Equal topic and per-row energy: two rows of one topic are clearly related.
        part = centers[rng.integers(0, n_topics, m)]
        part += rng.standard_normal((m, dim), dtype=np.float32) * scale
        x[s : s + m] = part @ rot + mean
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    # Planted duplicates: row i copies an earlier row with noise giving cosine in [0.85, 0.99].
    dups = np.flatnonzero(rng.random(n) < dup_fraction)
    dups = dups[dups > 0]
    src = (rng.random(len(dups)) * dups).astype(np.int64)
    target = rng.uniform(0.85, 0.99, len(dups)).astype(np.float32)
    eps = np.sqrt(1.0 / target**2 - 1.0)  # |x + eps*u| with u ⟂-ish unit noise
    for s in range(0, len(dups), chunk):
        sl = slice(s, s + chunk)
        noise = rng.standard_normal((len(dups[sl]), dim), dtype=np.float32)
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        x[dups[sl]] = x[src[sl]] + eps[sl, None] * noise
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="candidates for the ANN path")
    ap.add_argument("--exact-n", type=int, default=50_000, help="candidates for the exact path")
    ap.add_argument("--agree-n", type=int, default=50_000, help="prefix checked against exact")
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--nlist", type=int, default=0, help="IVF lists; 0 = 2*sqrt(n)")
    ap.add_argument("--nprobe", type=int, default=AnnOptions.nprobe)
    ap.add_argument("--batch-size", type=int, default=AnnOptions.batch_size)
    ap.add_argument("--repeat", type=int, default=1, help="ANN runs (checks determinism)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--decay", type=float, default=1.0, help="variance power law; 0 = isotropic")
    args = ap.parse_args()
    opts = AnnOptions(
        nlist=args.nlist,
        nprobe=args.nprobe,
        batch_size=args.batch_size,
    )
    print(f"cores: {os.cpu_count()}  load average: {os.getloadavg()[0]:.1f}  options: {opts}")
    t = time.perf_counter()
    x = synthetic_embeddings(max(args.n, args.exact_n), decay=args.decay, seed=args.seed)
    print(f"generated {len(x):,} x {x.shape[1]} in {time.perf_counter() - t:.1f} s")

    ex = greedy_dedup(x[: args.exact_n], args.threshold, index="exact")
    print(
        f"exact  n={args.exact_n:>9,}  kept {ex.keep.sum():>9,}  {ex.seconds:7.1f} s  "
        f"{args.exact_n / ex.seconds:>9,.0f} vectors/s"
    )
    first = None
    for run in range(1, args.repeat + 1):
        an = greedy_dedup(x[: args.n], args.threshold, index="ann", ann=opts, progress=True)
        print(
            f"ann    n={args.n:>9,}  kept {an.keep.sum():>9,}  {an.seconds:7.1f} s  "
            f"{args.n / an.seconds:>9,.0f} vectors/s  (run {run}, "
            f"load average {os.getloadavg()[0]:.1f})"
        )
        if first is None:
            first = an
        else:
            same = (first.keep == an.keep).all() and (first.duplicate_of == an.duplicate_of).all()
            print(f"run {run} has the same decisions as run 1: {bool(same)}")
    m = min(args.agree_n, args.exact_n, args.n)
    same = ex.keep[:m] == an.keep[:m]
    dup_same = (ex.duplicate_of[:m] == an.duplicate_of[:m]).mean()
    print(
        f"agreement on the first {m:,}: keep/drop {same.mean():.5f} "
        f"({(~same).sum()} differ: ANN kept/exact dropped {(an.keep[:m] & ~ex.keep[:m]).sum()}), "
        f"same duplicate_of {dup_same:.5f}"
    )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
