"""Global (camera) motion between decoded frames: codec motion vectors, else a small flow.

    from diffcap.video.motion import MotionProbe
    src = PyAVSource("clip.mp4", export_mvs=True)
    probe = MotionProbe(src.time_of)
    src.tap(probe)                    # every frame the source decodes passes the probe
    ...                               # decode as usual
    probe.samples[0]                  # MotionSample(time=0.133, dt=0.133, vx=0.12, ...)

Each sample is a similarity model (translation, scale, rotation) fitted robustly to where
blocks of one frame come from in an earlier one (:mod:`diffcap.video.simfit`: outliers such
as a subject moving on its own are set aside), then turned into rates per second in frame
units, so pans, tilts, zooms and rolls of any resolution and frame rate compare:

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

Cost: the probe only reads the side data of the P-frames it samples, copies the vectors out
as a numpy array at once, and never lets PyAV cache its side-data container on the frame
(``frame.side_data`` would: the container and the frame then refer to each other, and every
frame read that way waits for the garbage collector, 1.4 MB apiece at 720p). So the frames
are freed by reference counting as soon as the reader drops them.
"""

from __future__ import annotations

import gc
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from diffcap.video.lazyframe import convert
from diffcap.video.simfit import fit_similarity, nearest_reference

_SideData: Any
try:  # the container class itself: built here, it is not cached on the frame (no cycle)
    from av.sidedata.sidedata import SideDataContainer as _SideData
except ImportError:  # pragma: no cover - a PyAV without it: frame.side_data + collections
    _SideData = None

#: Samples kept per second of video (the rest of the decoded frames are only looked at).
RATE = 5.0
#: Pairs further apart than this (seconds) are not compared (a seek, a long skipped stretch).
MAX_GAP = 0.35
#: At most this many motion vectors enter one fit (a regular subsample of the frame's).
MAX_VECTORS = 400
#: Height of the gray pictures the flow fallback compares, and its patch side.
FLOW_HEIGHT = 96
PATCH = 32
#: The flow compares frames at least this far apart (seconds): a slow pan moves a few pixels
#: (phase correlation's sub-pixel estimate is biased towards whole pixels).
FLOW_SPAN = 0.1
#: Only where PyAV's side-data container cannot be built apart from the frame (see
#: :func:`side_data`): a full garbage collection per this many bytes of frames whose side
#: data was read, so at most this much is held by the frame/container cycle.
COLLECT_BYTES = 64 * 2**20
#: I/P frames remembered as the references a P-frame may have used.
REFS = 4
#: Keyframes in a row without any inter frame that make a video intra-only (flow).
INTRA_ONLY = 30
#: A fit whose inliers (by weight) are fewer than this is no sample (a cut, a flash).
MIN_INLIERS = 0.35


#: FFmpeg's AVMotionVector, as PyAV's ``MotionVectors.to_ndarray()`` reads it (built once
#: here: that method builds the dtype anew on every call).
MV_RECORD = np.dtype(
    [
        ("source", "int32"),
        ("w", "uint8"),
        ("h", "uint8"),
        ("src_x", "int16"),
        ("src_y", "int16"),
        ("dst_x", "int16"),
        ("dst_y", "int16"),
        ("flags", "uint64"),
        ("motion_x", "int32"),
        ("motion_y", "int32"),
        ("motion_scale", "uint16"),
    ],
    align=True,
)


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


def side_data(frame: Any, kind: str) -> Any:
    """The frame's side data of ``kind`` (e.g. ``"MOTION_VECTORS"``) or None, read without
    tying the frame into a reference cycle (see module): the container is built apart and
    dropped here; what is returned refers to the frame, so drop it (or copy out) soon."""
    if _SideData is None:  # pragma: no cover - see the import
        return frame.side_data.get(kind)
    return _SideData(frame).get(kind)


def vector_records(frame: Any) -> np.ndarray | None:
    """The frame's motion vectors as a structured array of its own (PyAV's record fields,
    see FACTS), at most about :data:`MAX_VECTORS` of them (a regular subsample); None when
    the frame carries none. The array owns its memory: nothing keeps the frame alive."""
    side = side_data(frame, "MOTION_VECTORS")
    if side is None:
        return None
    view = np.frombuffer(side, dtype=MV_RECORD)  # a view of the frame's buffer
    step = max(1, math.ceil(len(view) / MAX_VECTORS))
    mvs = view[::step].copy()
    del view, side
    return mvs


def motion_vectors(frame: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(dst, src, weight) of a frame's forward motion vectors, in pixels from the frame's
    centre; None when the frame carries none."""
    mvs = vector_records(frame)
    if mvs is None:
        return None
    mvs = mvs[mvs["source"] < 0]
    if len(mvs) < 8:
        return None
    dst = np.empty((len(mvs), 2))
    dst[:, 0] = mvs["dst_x"] - frame.width / 2.0
    dst[:, 1] = mvs["dst_y"] - frame.height / 2.0
    scale = np.maximum(mvs["motion_scale"], 1)
    src = dst.copy()
    src[:, 0] += mvs["motion_x"] / scale
    src[:, 1] += mvs["motion_y"] / scale
    weight = mvs["w"] * mvs["h"].astype(np.float64)
    return dst, src, weight


def gray_small(frame: Any) -> np.ndarray:
    """The frame as a float32 gray picture :data:`FLOW_HEIGHT` pixels high."""
    width = max(PATCH, round(frame.width * FLOW_HEIGHT / max(frame.height, 1)))
    small = convert(frame, width, FLOW_HEIGHT, "gray", interpolation="AREA", purpose="flow")
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
        self._touched = 0  # bytes of frames whose side data was read since the last collection
        self._refs: list[float] = []  # times of the last I/P frames, the latest last
        self._last: float | None = None
        self._due = -math.inf
        self._anchor: tuple[float, np.ndarray] | None = None

    def __call__(self, frame: Any) -> None:
        if _SideData is None and self._touched >= COLLECT_BYTES:  # pragma: no cover
            # (only with frame.side_data, see side_data(): a frame whose side data was read
            # is then freed by the garbage collector alone, and such frames would pile up)
            gc.collect()
            self._touched = 0
        t = float(self.clock(frame))
        if self._last is not None and t <= self._last:
            self._refs, self._anchor, self._due = [], None, -math.inf
            self.samples = [s for s in self.samples if s.time < t]
        self._last = t
        kind = int(frame.pict_type)
        if self.mode is None:
            self._touched += _frame_bytes(frame)
            self._decide(frame)
        if self.mode == "flow":
            self._flow(frame, t)
            return
        if kind == _P and self._refs and t >= self._due and t - self._refs[-1] <= MAX_GAP:
            self._touched += _frame_bytes(frame)
            vectors = motion_vectors(frame)
            if vectors is not None:
                self._add(vectors, (frame.width, frame.height), t, t - self._refs[-1], "mvs")
        if kind in (_I, _P):
            self._refs = [*self._refs[-(REFS - 1) :], t]

    def _decide(self, frame: Any) -> None:
        """Motion vectors when the codec exports them; the flow once three inter frames came
        without (or :data:`INTRA_ONLY` keyframes in a row: an intra-only codec)."""
        if side_data(frame, "MOTION_VECTORS") is not None:
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
        if source == "mvs":
            sample = self._older_reference(sample)
        for _ in range(self.rot_k):  # np.rot90 turns (dx, dy) into (dy, -dx)
            sample = _rot90(sample)
        self.samples.append(sample)
        self._due = t + self.every

    def _older_reference(self, s: MotionSample) -> MotionSample:
        """A P-frame predicted whole from an older I/P frame than the last reads k times too
        fast. When the reading is a spike over the previous sample (under 0.5 s before) and
        the reading over an older reference's distance matches that sample, take that one.
        (Only ever slower: the last I/P frame is the nearest reference there is.)"""
        prev = self.samples[-1] if self.samples else None
        if prev is None or prev.source != "mvs" or s.time - prev.time > 0.5:
            return s
        now, before = _rates(s), _rates(prev)
        if np.abs(now).sum() < 1.8 * np.abs(before).sum():
            return s
        for ref in reversed(self._refs[:-1]):
            dt = s.time - ref
            if dt > 2 * MAX_GAP:
                break
            f = s.dt / dt
            if np.abs(now * f - before).sum() <= 0.25 * np.abs(before).sum() + 0.01:
                return MotionSample(
                    s.time, dt, s.vx * f, s.vy * f, s.zoom * f, s.roll * f, s.inliers, s.source
                )
        return s


def _frame_bytes(frame: Any) -> int:
    """About what a decoded 8-bit 4:2:0 frame holds."""
    return int(frame.width * frame.height * 3 // 2)


def _rates(s: MotionSample) -> np.ndarray:
    """The rates as edge speeds in frame units per second (zoom and roll at half a frame)."""
    return np.array([s.vx, s.vy, s.zoom / 2, s.roll / 2])


def _rot90(s: MotionSample) -> MotionSample:
    return MotionSample(s.time, s.dt, s.vy, -s.vx, s.zoom, s.roll, s.inliers, s.source)
