"""Robust fits of a similarity motion (shift, scale, rotation) to point correspondences.

    params, share = fit_similarity(dst, src)     # src ≈ [[a, -b], [b, a]] @ dst + (tx, ty)
    params, share = nearest_reference(dst, src, weight)   # codec vectors, several references

Points are (N, 2) arrays in pixels from the picture's centre. The model is solved in closed
form with complex numbers (``q = m p + t``, ``m = a + ib``): a weighted least-squares step is
a handful of vector operations, so a fit over a few hundred vectors costs well under a
millisecond. Outliers (a subject moving on its own, badly predicted blocks) are set aside by
RANSAC over two-point models where one model does not explain most points, then by
iteratively reweighted least squares (Tukey's biweight).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Two-point similarity candidates RANSAC tries.
RANSAC_TRIES = 32
#: Least share of the weight that makes a cluster (the vectors of one reference frame).
MIN_CLUSTER = 0.12
#: Share of the weight within ``tol`` of the plain least-squares fit that skips RANSAC,
#: and that needs no reweighting either.
EASY, CLEAN = 0.8, 0.97

Params = np.ndarray  # (a, b, tx, ty)


def median(values: np.ndarray, axis: int | None = None) -> Any:
    """The median of data without NaNs (over all values, or along axis 0), as ``np.median``
    gives it, without what that costs on first use: importing ``numpy.ma`` (tens of
    milliseconds of a command's start-up)."""
    a = np.sort(np.asarray(values, dtype=np.float64), axis=axis)
    if a.shape[0] == 0:
        raise ValueError("the median of no values")
    mid = a.shape[0] // 2
    return a[mid] if a.shape[0] % 2 else (a[mid - 1] + a[mid]) / 2


def _solve(zp: np.ndarray, zq: np.ndarray, w: np.ndarray) -> tuple[complex, complex]:
    """Weighted least squares of ``zq ≈ m zp + t`` (closed form)."""
    sw = float(w.sum())
    if sw <= 0:
        return 1.0 + 0j, 0j
    mp, mq = (w * zp).sum() / sw, (w * zq).sum() / sw
    dp, dq = zp - mp, zq - mq
    den = float((w * (dp.real**2 + dp.imag**2)).sum())
    m = complex((w * np.conj(dp) * dq).sum() / den) if den > 1e-9 else 1.0 + 0j
    return m, complex(mq - m * mp)


def _params(m: complex, t: complex) -> Params:
    return np.array([m.real, m.imag, t.real, t.imag])


def _consensus(
    zp: np.ndarray, zq: np.ndarray, w0: np.ndarray, tol: float
) -> tuple[complex, complex, np.ndarray]:
    """RANSAC: of :data:`RANSAC_TRIES` models through two random point pairs (and the median
    shift), the one that explains the most weight within ``tol`` pixels, with its inliers."""
    pick = np.random.default_rng(len(zp)).integers(0, len(zp), (RANSAC_TRIES, 2))
    dp = zp[pick[:, 0]] - zp[pick[:, 1]]
    ok = np.abs(dp) > 1e-6
    m = np.ones(RANSAC_TRIES, complex)
    m[ok] = (zq[pick[ok, 0]] - zq[pick[ok, 1]]) / dp[ok]
    t = zq[pick[:, 0]] - m * zp[pick[:, 0]]
    d = zq - zp
    shift = complex(median(d.real), median(d.imag))  # a plain shift is always tried
    m, t = np.append(m, 1.0), np.append(t, shift)
    near = np.abs(m[:, None] * zp[None] + t[:, None] - zq[None]) < tol
    best = int(np.argmax((near * w0).sum(1)))  # (no BLAS: its threads spin)
    return complex(m[best]), complex(t[best]), near[best]


def _irls(
    zp: np.ndarray, zq: np.ndarray, w0: np.ndarray, m: complex, t: complex, tol: float, iters: int
) -> tuple[complex, complex, float]:
    """Reweighted least squares from (m, t); the scale comes from the points near the model
    only, so a cluster of consistent outliers cannot pull the fit half-way."""
    w = w0
    for _ in range(iters):
        r = np.abs(m * zp + t - zq)
        near = r[r < 4 * tol]
        scale = max(1.4826 * float(median(near)) if len(near) else tol, 0.5)
        c = 4.685 * scale
        w = w0 * np.where(r < c, (1 - (r / c) ** 2) ** 2, 0.0)
        if w.sum() < 6 * w0.mean():
            return m, t, 0.0
        m, t = _solve(zp, zq, w)
    return m, t, float(w.sum() / max(w0.sum(), 1e-12))


def _complex(points: np.ndarray) -> np.ndarray:
    return points[:, 0].astype(np.float64) + 1j * points[:, 1].astype(np.float64)


def fit_similarity(
    dst: np.ndarray,
    src: np.ndarray,
    weight: np.ndarray | None = None,
    tol: float = 1.5,
    iters: int = 4,
) -> tuple[Params, float]:
    """Robust fit of ``src ≈ [[a, -b], [b, a]] @ dst + t``: ((a, b, tx, ty), inlier share).
    ``tol``: pixels within which a point agrees with a model."""
    zp, zq = _complex(dst), _complex(src)
    w0 = np.ones(len(zp)) if weight is None else weight.astype(np.float64)
    m, t = _solve(zp, zq, w0)
    if (w0 * (np.abs(m * zp + t - zq) < tol)).sum() < EASY * w0.sum():
        m, t, _ = _consensus(zp, zq, w0, tol)
    m, t, share = _irls(zp, zq, w0, m, t, tol, iters)
    return _params(m, t), share


def _field(m: complex, t: complex, radius: float) -> np.ndarray:
    """The model's displacements at four points ``radius`` from the centre."""
    pts = radius * np.array([1, 1j, -1, -1j])
    return (m - 1) * pts + t


def nearest_reference(
    dst: np.ndarray, src: np.ndarray, weight: np.ndarray, tol: float = 1.5
) -> tuple[Params, float]:
    """The fit for H.264-style vectors, whose blocks may each use another reference frame.

    In one P-frame, blocks predicted from the frames 2 and 5 frames back show the same
    camera motion 2 and 5 times over (clusters of proportional displacement fields).
    Clusters are found by RANSAC on what is left, up to three times; of the one with the
    most blocks and those that are a smaller multiple of it, the smallest is the nearest
    reference, the previous I/P frame. A cluster that is no multiple (a subject on its own,
    a static object in a tracking shot) is never chosen. Returns (params, share of the
    weight the multiples explain). One model that explains most vectors skips all this."""
    zp, zq = _complex(dst), _complex(src)
    w0 = weight.astype(np.float64)
    m, t = _solve(zp, zq, w0)
    easy = float((w0 * (np.abs(m * zp + t - zq) < tol)).sum()) / float(w0.sum())
    if easy >= CLEAN:  # (most frames of a steady shot: nothing to set aside)
        return _params(m, t), easy
    if easy >= EASY:
        m, t, share = _irls(zp, zq, w0, m, t, tol, 2)
        return _params(m, t), share
    total, left = float(w0.sum()), np.ones(len(zp), bool)
    clusters: list[tuple[complex, complex, float]] = []
    for _ in range(3):
        if left.sum() < 8:
            break
        cm, ct, near = _consensus(zp[left], zq[left], w0[left], tol)
        part = float(w0[left][near].sum()) / total
        if part < MIN_CLUSTER:
            break
        clusters.append((cm, ct, part))
        left[np.flatnonzero(left)[near]] = False
    if not clusters:
        return _params(1.0 + 0j, 0j), 0.0
    radius = float(median(np.abs(zp))) or 1.0
    m, t, share = clusters[0]  # the most blocks
    fb = _field(m, t, radius)
    if np.abs(fb).sum() >= 4 * tol:  # a still cluster has no multiples
        for cm, ct, part in clusters[1:]:
            fs = _field(cm, ct, radius)
            k = float((np.conj(fb) * fs).real.sum() / (np.abs(fb) ** 2).sum())
            if 0.1 <= k <= 0.9 and np.abs(fs - k * fb).sum() <= 0.25 * np.abs(fb).sum():
                share += part
                if np.abs(fs).sum() < np.abs(_field(m, t, radius)).sum():
                    m, t = cm, ct
    m, t, _ = _irls(zp, zq, w0, m, t, tol, 3)
    return _params(m, t), share
