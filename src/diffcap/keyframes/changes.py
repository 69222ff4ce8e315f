"""Cut candidates: a cheap dense cut signal on every frame the sampling pass decodes.

The sampling pass decodes far more frames than it samples (every reference frame up to each
target). Each of them is also point-sampled to a 64x36 picture (swscale, ~20 us on 720p, any
pixel format) and compared with the previous decoded frame: the mean absolute difference of
a 9x16 grid of RGB block means. Where it jumps (a hard cut, or the content on both sides of a
seek differing), that frame becomes an extra *cut candidate*. A cut candidate is embedded and
compared with the **last kept** keyframe like any candidate (the paper's rule); it only gets
a looser bar (``cut_threshold``), because it is known to start something new.

    watch = ChangeWatch(src, start=0.0, end=None)        # src: a PyAVSource
    for frame, kind in watched_targets(src, times, kinds, watch):
        ...     # kind "change" for a cut candidate, else the target's own kind

Where the reader skips ahead, it first decodes the codec keyframes of the skipped stretch
alone (``PyAVSource.peek_keyframes``; encoders start shots there) and the landing frame is
compared with the last frame before the jump; see docs/keyframes.md.

Calibrated on the real clips of benchmarks/keyframes_quality.py (TransNetV2 as reference):
the first frames after its 68 cuts scored >= 0.122; of 2,745 other decoded frames 11 scored
above 0.10, all beside a cut or on corrupt frames.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from av import VideoFrame

from diffcap.video.lazyframe import LazyFrame, convert

#: Point-sampled picture the signal is computed from (width, height) and its grid of blocks.
SAMPLE = (64, 36)
GRID = (9, 16)
#: Signal (mean absolute difference of block means, 0-1) above which a frame is a candidate.
CHANGE_SIGNAL = 0.10
#: Fewest seconds between two cut candidates (bounds the work and the frames held on strobe
#: light, noise or a slideshow of cuts).
MIN_GAP = 0.2
#: Decoded frames remembered, to compare with after the reader stepped back.
RECENT = 16


def _pooling() -> tuple[np.ndarray, np.ndarray]:
    """Row and column averaging matrices: ``rows @ image(36, 64*3) @ cols`` is the (9, 16*3)
    grid of block means (two tiny matrix products: ~8x faster than a 5-axis mean)."""
    bh, bw = SAMPLE[1] // GRID[0], SAMPLE[0] // GRID[1]
    rows = np.kron(np.eye(GRID[0], dtype=np.float32), np.full((1, bh), 1 / bh, np.float32))
    cols = np.zeros((SAMPLE[0] * 3, GRID[1] * 3), dtype=np.float32)
    for x in range(SAMPLE[0]):
        for c in range(3):
            cols[x * 3 + c, (x // bw) * 3 + c] = 1 / bw
    return rows, cols


_ROWS, _COLS = _pooling()


def block_means(image: np.ndarray) -> np.ndarray:
    """(9, 16, 3) float32 block means of a (36, 64, 3) uint8 picture."""
    flat = image.reshape(SAMPLE[1], SAMPLE[0] * 3).astype(np.float32)
    return (_ROWS @ flat @ _COLS).reshape(GRID[0], GRID[1], 3)


def change_signal(a: np.ndarray, b: np.ndarray) -> float:
    """How different two block-mean grids are: mean absolute difference, 0 (same) to 1."""
    return float(np.abs(a - b).mean() / 255.0)


class ChangeWatch:
    """Called with every decoded frame (``PyAVSource.on_decode``); holds the cut candidates
    found since the last :meth:`drain` as lazy frames (exact PTS), at most one per
    :data:`MIN_GAP` seconds, only inside ``[start, end)``."""

    def __init__(
        self,
        src: Any,
        start: float = 0.0,
        end: float | None = None,
        signal: float = CHANGE_SIGNAL,
    ) -> None:
        self.src, self.start, self.end, self.signal = src, start, end, signal
        #: (PTS, block means) of the latest decoded frames, in time order.
        self._recent: list[tuple[int, np.ndarray]] = []
        self._found: list[LazyFrame] = []
        self._flagged: list[tuple[int, float]] = []  # (PTS, s) of every frame flagged
        #: Times of the cut candidates handed out by :func:`watched_targets`.
        self.times: list[float] = []
        #: Frames whose signal fired (read by the source around a skip, see :attr:`changes`).
        self.changes = 0
        #: Cuts seen between two frames decoded one after the other (no seek between), on a
        #: codec keyframe / on another frame: does this encoder start shots on keyframes?
        self.cuts_on_keys = self.cuts_off_keys = 0
        self._seeks = -1  # the source's seek count at the previous frame

    def __call__(self, frame: VideoFrame) -> None:
        pts = frame.pts if frame.pts is not None else (frame.dts or 0)
        self._forget(pts)
        small = convert(
            frame, SAMPLE[0], SAMPLE[1], interpolation="POINT", purpose="cut"
        ).to_ndarray()
        grid = block_means(small)
        prev = self._recent[-1][1] if self._recent else None
        self._recent = [*self._recent[-(RECENT - 1) :], (pts, grid)]
        seeks, self._seeks = self._seeks, getattr(self.src, "seeks", 0)
        if prev is None or change_signal(prev, grid) <= self.signal:
            return
        self.changes += 1
        if seeks == self._seeks:  # the frame before was decoded just before this one
            if frame.key_frame:
                self.cuts_on_keys += 1
            else:
                self.cuts_off_keys += 1
        lazy = self.src.lazy(frame)  # only now: most frames are never candidates
        t = lazy.time
        if t < self.start or (self.end is not None and t >= self.end):
            return
        if self._flagged and t - self._flagged[-1][1] < MIN_GAP:
            return
        self._found.append(lazy)
        self._flagged.append((pts, t))

    @property
    def keys_mark_cuts(self) -> bool:
        """Whether every cut seen so far between consecutive frames fell on a codec keyframe
        (an encoder with scene-cut detection: x264, x265, libvpx, xvid start shots there).
        Until one is seen, or once one fell elsewhere, the reader looks into a skipped
        stretch whose keyframes show a change (see ``Seeking._look_inside``)."""
        return self.cuts_on_keys > 0 and self.cuts_off_keys == 0

    def _forget(self, pts: int) -> None:
        """A frame at or before one already seen: the reader went back (a seek that landed
        too late and stepped back, the last GOP decoded again). What was seen from ``pts``
        on is forgotten, so frames are always compared with the one decoded before them."""
        if not self._recent or pts > self._recent[-1][0]:
            return
        self._recent = [r for r in self._recent if r[0] < pts]
        self._found = [f for f in self._found if f.timestamp.pts < pts]
        self._flagged = [f for f in self._flagged if f[0] < pts]

    def drain(self, until_pts: int | None = None) -> list[LazyFrame]:
        """The candidates found so far (with PTS <= ``until_pts`` when given), removed."""
        if until_pts is None:
            out, self._found = self._found, []
            return out
        out = [f for f in self._found if f.timestamp.pts <= until_pts]
        self._found = self._found[len(out) :]
        return out


def watched_targets(
    src: Any,
    times: Iterable[float],
    kinds: Iterable[str],
    watch: ChangeWatch,
    full: bool = False,
) -> Iterator[tuple[LazyFrame, str]]:
    """The answers of ``src.lazy_frames_at(times)`` with their kinds, and before each, in
    time order, the cut candidates decoded on the way to it (kind ``"change"``).

    The watch is attached for the duration of the iteration and sees every decoded frame,
    so a cut between two targets is found even when no target falls in its shot. Where the
    reader skips ahead (it seeks to a codec keyframe when one lies between two targets), the
    frame it lands on is compared with the last one before the jump: a shot that starts in
    the skipped stretch and goes on past it (any shot longer than the interval does) is
    still found, at the landing frame. ``full``: never skip ahead after the first target,
    so shots shorter than the interval are found too, at the cost of decoding every
    reference frame (non-reference frames before a target are still skipped: a cut on one
    is seen one frame late)."""
    src.watch(watch)
    last = None  # PTS of the last frame handed out: a frame found again is not repeated
    seeks = src.min_seek_skip, src.seek_threshold
    try:
        for frame, kind in zip(src.lazy_frames_at(times), kinds, strict=False):
            # after the first target (reached by a plain seek when the window starts late)
            if full:
                src.min_seek_skip = src.seek_threshold = math.inf
            else:
                src.peek_keyframes = True
            for found in watch.drain(frame.timestamp.pts):
                if last is None or found.timestamp.pts > last:
                    last = found.timestamp.pts
                    watch.times.append(found.time)
                    yield found, "change"
            last = frame.timestamp.pts if last is None else max(last, frame.timestamp.pts)
            yield frame, kind
    finally:
        src.watch(None)
        src.min_seek_skip, src.seek_threshold = seeks
        src.peek_keyframes = False
