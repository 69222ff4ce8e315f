"""Global (camera) motion between decoded frames: codec motion vectors, else a small flow.

    from diffcap.video.motion import MotionProbe
    probe = MotionProbe()
    src.taps.append(probe)            # a PyAVSource opened with export_mvs=True
    ...                               # decode as usual; every decoded frame passes the probe
    probe.samples[0]                  # MotionSample(time=0.133, dt=0.033, vx=0.12, ...)

Each sample is a similarity model (translation, scale, rotation) fitted to where blocks of
one frame come from in an earlier one, with outliers (a subject moving on its own, badly
predicted blocks) set aside: a RANSAC start (two-point similarities), then iteratively
reweighted least squares (Tukey's biweight),
then turned into rates per second in frame units, so pans, tilts, zooms and rolls of any
resolution and frame rate compare:

* ``vx``/``vy``: frame widths / heights per second the picture content comes from, i.e. the
  camera's motion: ``vx > 0`` pans right, ``vy > 0`` tilts down;
* ``zoom``: log scale change per second, ``> 0`` zooms in;
* ``roll``: radians per second, ``> 0`` the camera turns counter-clockwise (the picture
  turns clockwise).

Motion vectors (H.264, MPEG-2/4, H.263: FFmpeg exports them with ``flags2=+export_mvs``) of
P-frames are used, each against the previous I/P frame in presentation order (B-frames are
skipped: their reference distance is not exported). Where a codec exports none (HEVC, VP9,
AV1, intra-only codecs), the probe falls back to phase correlation of 32x32 patches of two
decoded frames about :data:`FLOW_SPAN` apart, scaled to 96 pixels high. At most
:data:`RATE` samples a second are kept, which bounds the cost on long videos.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Samples kept per second of video (the rest of the decoded frames are only looked at).
RATE = 8.0
#: Pairs further apart than this (seconds) are not compared (a seek, a long skipped stretch).
MAX_GAP = 0.35
#: At most this many motion vectors enter one fit (a regular subsample of the frame's).
MAX_VECTORS = 1200
#: Height of the gray pictures the flow fallback compares, and its patch side.
FLOW_HEIGHT = 96
PATCH = 32
#: The flow compares frames at least this far apart (seconds): a slow pan moves a few pixels
#: (phase correlation's sub-pixel estimate is biased towards whole pixels).
FLOW_SPAN = 0.1
#: Two-point similarity candidates tried before the reweighted fit.
RANSAC_TRIES = 48
#: Least share of the vectors' weight that makes a cluster (one reference frame's).
MIN_CLUSTER = 0.12
#: Keyframes in a row without any inter frame that make a video intra-only (flow).
INTRA_ONLY = 30
#: A fit whose inliers (by weight) are fewer than this is no sample (a cut, a flash).
MIN_INLIERS = 0.35


@dataclass(frozen=True)
class MotionSample:
    """Global motion at ``time`` measured over the ``dt`` seconds before it (see module)."""

    time: float
    dt: float
    vx: float
    vy: float
    zoom: float
    roll: float
    inliers: float
    source: str  # "mvs" or "flow"


def _consensus(
    dst: np.ndarray, src: np.ndarray, w0: np.ndarray, tol: float, tries: int = RANSAC_TRIES
) -> tuple[np.ndarray, np.ndarray]:
    """RANSAC: of ``tries`` similarities through two random point pairs (and the median
    shift), the one that explains the most weight within ``tol`` pixels; (params, inliers)."""
    zp, zq = dst[:, 0] + 1j * dst[:, 1], src[:, 0] + 1j * src[:, 1]
    pick = np.random.default_rng(len(dst)).integers(0, len(dst), (tries, 2))
    dp = zp[pick[:, 0]] - zp[pick[:, 1]]
    ok = np.abs(dp) > 1e-6
    m = np.ones(tries, complex)
    m[ok] = (zq[pick[ok, 0]] - zq[pick[ok, 1]]) / dp[ok]
    t = zq[pick[:, 0]] - m * zp[pick[:, 0]]
    shift = np.median(src - dst, axis=0)  # a plain shift is always a candidate
    m, t = np.append(m, 1.0), np.append(t, shift[0] + 1j * shift[1])
    near = np.abs(m[:, None] * zp[None] + t[:, None] - zq[None]) < tol
    best = int(np.argmax((near * w0).sum(1)))
    return np.array([m[best].real, m[best].imag, t[best].real, t[best].imag]), near[best]


def fit_similarity(
    dst: np.ndarray,
    src: np.ndarray,
    weight: np.ndarray | None = None,
    tol: float = 1.5,
    iters: int = 5,
    start: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Robust fit of ``src ≈ [[a, -b], [b, a]] @ dst + t``; returns ((a, b, tx, ty), inlier
    share). ``dst``/``src``: (N, 2) points (centred coordinates), ``weight``: (N,) priors,
    ``tol``: pixels within which a point agrees with a RANSAC candidate; ``start``: the
    model to refine (default: RANSAC's best)."""
    n = len(dst)
    w0 = np.ones(n) if weight is None else weight.astype(np.float64)
    x, y = dst[:, 0].astype(np.float64), dst[:, 1].astype(np.float64)
    design = np.zeros((2 * n, 4))
    design[0::2] = np.stack([x, -y, np.ones(n), np.zeros(n)], 1)
    design[1::2] = np.stack([y, x, np.zeros(n), np.ones(n)], 1)
    target = src.astype(np.float64).reshape(-1)
    # RANSAC's best start, then reweighted least squares whose scale comes from the points
    # near the model only: a subject moving on its own (a cluster of consistent outliers)
    # cannot pull the fit half-way
    params = _consensus(dst, src, w0, tol)[0] if start is None else start
    w = w0
    for _ in range(iters):
        res = (design @ params - target).reshape(-1, 2)
        r = np.hypot(res[:, 0], res[:, 1])
        near = r[r < 4 * tol]
        scale = max(1.4826 * float(np.median(near)) if len(near) else tol, 0.5)
        c = 4.685 * scale
        w = w0 * np.where(r < c, (1 - (r / c) ** 2) ** 2, 0.0)
        if w.sum() < 6 * w0.mean():
            return params, 0.0
        sw = np.sqrt(np.repeat(w, 2))
        params = np.linalg.lstsq(design * sw[:, None], target * sw, rcond=None)[0]
    return params, float(w.sum() / max(w0.sum(), 1e-9))


def _field(params: np.ndarray, radius: float) -> np.ndarray:
    """The model's displacements at four points ``radius`` from the centre (2x4 values)."""
    a, b, tx, ty = params
    pts = np.array([[radius, 0], [0, radius], [-radius, 0], [0, -radius]], float)
    return np.stack(
        [(a - 1) * pts[:, 0] - b * pts[:, 1] + tx, b * pts[:, 0] + (a - 1) * pts[:, 1] + ty]
    )


def nearest_reference(
    dst: np.ndarray, src: np.ndarray, weight: np.ndarray, tol: float = 1.5
) -> tuple[np.ndarray, float]:
    """The fit for H.264-style vectors, whose blocks may each use another reference frame.

    In one P-frame, blocks predicted from the frame 2 and the frame 5 frames back show the
    same camera motion 2 and 5 times over (clusters of proportional displacement fields).
    Clusters are found by RANSAC on what is left, three times; of the one with the most
    blocks and those that are a smaller multiple of it, the smallest is the nearest
    reference, the previous I/P frame. A
    cluster that is no multiple (a subject on its own, a static object in a tracking shot)
    is never chosen. Returns (params, share of the weight the multiples explain)."""
    total = float(weight.sum())
    left = np.ones(len(dst), bool)
    clusters: list[tuple[np.ndarray, float]] = []
    for _ in range(3):
        if left.sum() < 8:
            break
        params, near = _consensus(dst[left], src[left], weight[left], tol)
        share = float(weight[left][near].sum()) / total
        if share < MIN_CLUSTER:
            break
        clusters.append((params, share))
        left[np.flatnonzero(left)[near]] = False
    if not clusters:
        return np.array([1.0, 0.0, 0.0, 0.0]), 0.0
    radius = float(np.median(np.hypot(dst[:, 0], dst[:, 1]))) or 1.0
    chosen, share = clusters[0]  # the most blocks
    fb = _field(chosen, radius)
    if np.abs(fb).sum() < 4 * tol:  # (about) still: nothing is a multiple of it
        return fit_similarity(dst, src, weight, tol, start=chosen)
    for params, part in clusters[1:]:
        fs = _field(params, radius)
        k = float((fs * fb).sum() / max((fb * fb).sum(), 1e-9))
        if 0.1 <= k <= 0.9 and np.abs(fs - k * fb).sum() <= 0.25 * np.abs(fb).sum():
            share += part
            if np.abs(fs).sum() < np.abs(_field(chosen, radius)).sum():
                chosen = params
    refined, _ = fit_similarity(dst, src, weight, tol, start=chosen)
    return refined, share


def motion_vectors(frame: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(dst, src, weight) of a frame's forward motion vectors, in pixels from the frame's
    centre; None when the frame carries none."""
    side = frame.side_data.get("MOTION_VECTORS")
    if side is None:
        return None
    mvs = side.to_ndarray()
    mvs = mvs[mvs["source"] < 0]
    if len(mvs) < 8:
        return None
    if len(mvs) > MAX_VECTORS:
        mvs = mvs[:: math.ceil(len(mvs) / MAX_VECTORS)]
    centre = np.array([frame.width / 2.0, frame.height / 2.0])
    dst = np.stack([mvs["dst_x"], mvs["dst_y"]], 1).astype(np.float64) - centre
    scale = np.maximum(mvs["motion_scale"], 1).astype(np.float64)
    shift = np.stack([mvs["motion_x"] / scale, mvs["motion_y"] / scale], 1)
    weight = mvs["w"].astype(np.float64) * mvs["h"].astype(np.float64)
    return dst, dst + shift, weight


def gray_small(frame: Any) -> np.ndarray:
    """The frame as a float32 gray picture :data:`FLOW_HEIGHT` pixels high."""
    width = max(PATCH, round(frame.width * FLOW_HEIGHT / max(frame.height, 1)))
    small = frame.reformat(width=width, height=FLOW_HEIGHT, format="gray", interpolation="AREA")
    return small.to_ndarray().astype(np.float32)


def _patch_shift(a: np.ndarray, b: np.ndarray, window: np.ndarray) -> tuple[float, float, float]:
    """Shift (dx, dy) such that ``a`` at p looks like ``b`` at p - shift... returned as where
    ``b``'s content comes from in ``a``, with the correlation peak's height."""
    fa = np.fft.rfft2((a - a.mean()) * window)
    fb = np.fft.rfft2((b - b.mean()) * window)
    cross = fa * np.conj(fb)
    cross /= np.abs(cross) + 1e-6
    corr = np.fft.irfft2(cross, s=a.shape)
    iy, ix = np.unravel_index(int(np.argmax(corr)), corr.shape)
    peak = float(corr[iy, ix])
    h, w = corr.shape

    def sub(c_m: float, c_0: float, c_p: float) -> float:
        d = c_m - 2 * c_0 + c_p
        return 0.0 if d >= 0 else 0.5 * (c_m - c_p) / d

    dy = iy + sub(corr[iy - 1, ix], peak, corr[(iy + 1) % h, ix])
    dx = ix + sub(corr[iy, ix - 1], peak, corr[iy, (ix + 1) % w])
    dx = dx - w if dx > w / 2 else dx
    dy = dy - h if dy > h / 2 else dy
    return dx, dy, peak


_WINDOW = np.outer(np.hanning(PATCH), np.hanning(PATCH)).astype(np.float32)


def _global_shift(prev: np.ndarray, cur: np.ndarray) -> tuple[int, int]:
    """Whole-picture phase correlation: the shift (whole pixels) patches start from, so a
    fast pan does not leave the patches."""
    h, w = cur.shape
    window = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    dx, dy, _ = _patch_shift(prev, cur, window)
    return round(dx), round(dy)


def flow_vectors(prev: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dst, src, weight) of patch shifts between two gray pictures (:func:`gray_small`), in
    pixels of the small picture from its centre; ``src`` is where each patch of ``cur`` lies
    in ``prev``."""
    h, w = cur.shape
    gx, gy = _global_shift(prev, cur)
    ys = np.linspace(0, h - PATCH, 3).astype(int)
    xs = np.linspace(0, w - PATCH, max(3, round(w / PATCH * 1.5))).astype(int)
    # each patch starts from no shift and from the global one (which a large moving subject
    # may have won), and keeps the better match
    starts = [(0, 0)] if (gx, gy) == (0, 0) else [(0, 0), (gx, gy)]
    dst, src, weight = [], [], []
    for y in ys:
        for x in xs:
            best = None
            for sx, sy in starts:
                px, py = x + sx, y + sy
                if not (0 <= px <= w - PATCH and 0 <= py <= h - PATCH):
                    continue  # its content came from outside the earlier picture
                dx, dy, peak = _patch_shift(
                    prev[py : py + PATCH, px : px + PATCH],
                    cur[y : y + PATCH, x : x + PATCH],
                    _WINDOW,
                )
                if best is None or peak > best[2]:
                    best = (sx + dx, sy + dy, peak)
            if best is None:
                continue
            c = (x + PATCH / 2 - w / 2, y + PATCH / 2 - h / 2)
            dst.append(c)
            src.append((c[0] + best[0], c[1] + best[1]))
            weight.append(max(best[2], 1e-3))
    return np.array(dst).reshape(-1, 2), np.array(src).reshape(-1, 2), np.array(weight)


def to_sample(
    params: np.ndarray,
    inliers: float,
    size: tuple[float, float],
    time: float,
    dt: float,
    source: str,
) -> MotionSample:
    """Rates per second in frame units from a fit over ``dt`` seconds (see module)."""
    a, b, tx, ty = (float(v) for v in params)
    scale = max(math.hypot(a, b), 1e-6)
    return MotionSample(
        time=time,
        dt=dt,
        vx=tx / size[0] / dt,
        vy=ty / size[1] / dt,
        zoom=-math.log(scale) / dt,
        roll=-math.atan2(b, a) / dt,
        inliers=inliers,
        source=source,
    )


_I, _P = 1, 2  # PyAV's pict_type values


class MotionProbe:
    """Called with every decoded frame (a ``PyAVSource`` tap) in presentation order; keeps
    :class:`MotionSample` s, at most :data:`RATE` a second, in :attr:`samples`.

    ``clock``: a frame's time in seconds (the source's clock); ``rot_k``: the display
    rotation in quarter turns counter-clockwise, so directions are those of the upright
    picture. Frames at or before one already seen (the reader stepped back) restart it.
    """

    def __init__(self, clock: Any, rot_k: int = 0, rate: float = RATE) -> None:
        self.clock, self.rot_k, self.every = clock, rot_k % 4, 1.0 / rate
        self.samples: list[MotionSample] = []
        self.mode: str | None = None  # "mvs" or "flow", decided by the first frames
        self._keys = self._bare = 0  # keyframes / inter frames seen without vectors
        self._ref: float | None = None  # time of the last I/P frame
        self._last: float | None = None
        self._due = -math.inf
        self._anchor: tuple[float, np.ndarray] | None = None

    def __call__(self, frame: Any) -> None:
        t = float(self.clock(frame))
        if self._last is not None and t <= self._last:
            self._ref, self._anchor, self._due = None, None, -math.inf
            self.samples = [s for s in self.samples if s.time < t]
        self._last = t
        kind = int(frame.pict_type)
        if self.mode is None:
            self._decide(frame)
        if self.mode == "flow":
            self._flow(frame, t)
            return
        if kind == _P and self._ref is not None and t >= self._due and t - self._ref <= MAX_GAP:
            vectors = motion_vectors(frame)
            if vectors is not None:
                self._add(vectors, (frame.width, frame.height), t, t - self._ref, "mvs")
        if kind in (_I, _P):
            self._ref = t

    def _decide(self, frame: Any) -> None:
        """Motion vectors when the codec exports them; the flow once three inter frames came
        without (or :data:`INTRA_ONLY` keyframes in a row: an intra-only codec)."""
        if frame.side_data.get("MOTION_VECTORS") is not None:
            self.mode = "mvs"
            return
        if frame.key_frame:
            self._keys += 1
        else:
            self._bare += 1
        if self._bare >= 3 or self._keys >= INTRA_ONLY:
            self.mode = "flow"

    def _flow(self, frame: Any, t: float) -> None:
        anchor = self._anchor
        if anchor is not None and t - anchor[0] > MAX_GAP:
            anchor = self._anchor = None
        if anchor is not None:
            if t - anchor[0] >= FLOW_SPAN:
                cur = gray_small(frame)
                h, w = cur.shape
                self._add(flow_vectors(anchor[1], cur), (w, h), t, t - anchor[0], "flow")
                self._anchor = (t, cur)  # chained: one small picture per sample
            return
        if t >= self._due:
            self._anchor = (t, gray_small(frame))

    def _add(
        self,
        vectors: tuple[np.ndarray, np.ndarray, np.ndarray],
        size: tuple[int, int],
        t: float,
        dt: float,
        source: str,
    ) -> None:
        if len(vectors[0]) < 4:
            return
        if source == "mvs":
            params, inliers = nearest_reference(*vectors)
        else:
            params, inliers = fit_similarity(*vectors, tol=0.75)
        if inliers < MIN_INLIERS or dt <= 0:
            return
        sample = to_sample(params, inliers, (float(size[0]), float(size[1])), t, dt, source)
        for _ in range(self.rot_k):  # np.rot90 turns (dx, dy) into (dy, -dx)
            sample = _rot90(sample)
        self.samples.append(sample)
        self._due = t + self.every


def _rot90(s: MotionSample) -> MotionSample:
    return MotionSample(s.time, s.dt, s.vy, -s.vx, s.zoom, s.roll, s.inliers, s.source)
