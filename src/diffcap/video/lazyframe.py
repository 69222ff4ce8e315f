"""A decoded frame kept in the decoder's own format, converted to RGB only when asked, and
then straight at the size needed (one swscale pass: scaling, chroma upsampling and RGB).

    for frame in source.lazy_frames_at([0.0, 2.0]):   # PyAVSource only
        frame.time                                      # exact PTS seconds, as frames_at
        small = frame.resized((128, 128))               # stretched thumbnail, area-averaged
        saved = frame.capped(1024)                      # longest side <= 1024, aspect kept
        full = frame.image                              # identical to frames_at()'s image

Why: for sparse sampling, turning every sampled 720p/1080p frame into a full-size RGB array
costs as much as decoding a few more frames, and most samples only ever feed a 128-pixel
descriptor. A YUV 4:2:0 frame also holds half the bytes of its RGB form. The conversions
release the GIL (swscale runs without it), so they can run on any thread: the frame's pixels
are reference-counted and never written to once decoded.
"""

from __future__ import annotations

import threading

import numpy as np
from av import VideoFrame
from av.video.reformatter import VideoReformatter

from diffcap.timeline import Frame, Timestamp

#: Swscale contexts per thread and purpose, reused across frames (setting one up costs about
#: as much as converting a thumbnail); a context must not be shared between threads.
_local = threading.local()


def _reformatter(purpose: str = "rgb") -> VideoReformatter:
    refs: dict[str, VideoReformatter] = _local.__dict__.setdefault("reformatters", {})
    ref = refs.get(purpose)
    if ref is None:
        ref = refs[purpose] = VideoReformatter()
    return ref


def convert(
    frame: VideoFrame,
    width: int | None = None,
    height: int | None = None,
    format: str = "rgb24",
    interpolation: str | None = None,
    purpose: str = "rgb",
) -> VideoFrame:
    """``frame.reformat(...)`` on this thread's context for ``purpose``, single-threaded.

    Every conversion of diffcap's goes through here, never through PyAV's
    ``VideoFrame.reformat`` / ``to_ndarray(format=...)``: from PyAV 18.1.1 on, those keep a
    context per thread in a ``threading.local`` with swscale's slice threads on. When another
    thread then starts a subprocess with a ``preexec_fn`` (Ray does, starting its workers) or
    forks, the child frees that context while it clears the other threads' state, and hangs
    for good in ``pthread_cond_destroy`` (the slice threads do not exist there). A
    single-threaded context frees cleanly anywhere. The callers already overlap work across
    threads; swscale's own threads only add overhead on a busy machine (measured: 4.1 vs
    5.4 ms for 720p -> 1024). ``purpose`` keeps one context per kind of conversion, so
    thumbnails and full frames do not make one context reconfigure itself at every call."""
    return _reformatter(purpose).reformat(
        frame, width, height, format, interpolation=interpolation, threads=1
    )


def capped_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(w, h) with the longest side at most ``max_side`` (aspect kept; never upscaled).
    Rounds like :func:`diffcap.keyframes.writer.cap_size`."""
    longest = max(width, height)
    if max_side is None or longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


class LazyFrame:
    """One sampled frame: its timestamp now, its RGB pixels on demand (upright).

    Duck-compatible with :class:`~diffcap.timeline.Frame` (``image``, ``timestamp``, ``time``).
    """

    __slots__ = ("_av", "_image", "_lock", "_rot_k", "timestamp")

    def __init__(self, frame: VideoFrame, timestamp: Timestamp, rot_k: int = 0) -> None:
        self._av = frame
        self._rot_k = rot_k % 4
        self._image: np.ndarray | None = None
        # PyAV retags the source frame's colour fields while it converts (restoring them
        # after), so two threads must not convert one frame at the same time.
        self._lock = threading.Lock()
        self.timestamp = timestamp

    @property
    def time(self) -> float:
        return self.timestamp.seconds

    @property
    def size(self) -> tuple[int, int]:
        """Displayed (width, height), rotation applied."""
        w, h = self._av.width, self._av.height
        return (h, w) if self._rot_k % 2 else (w, h)

    @property
    def image(self) -> np.ndarray:
        """Full-size upright RGB, exactly as :meth:`PyAVSource.frames_at` returns it (cached)."""
        with self._lock:
            if self._image is None:
                # 10-bit and odd sizes: swscale does the work; same call as the eager path
                self._image = self._upright(convert(self._av, purpose="full").to_ndarray())
            return self._image

    def capped(self, max_side: int | None) -> np.ndarray:
        """Upright RGB with the longest side at most ``max_side`` (bicubic, antialiased by
        swscale when shrinking); the full image when it already fits."""
        w, h = self.size
        size = capped_size(w, h, max_side)
        if size == (w, h):
            return self.image
        return self.resized(size, interpolation="BICUBIC")

    def resized(self, size: tuple[int, int], interpolation: str = "AREA") -> np.ndarray:
        """Upright RGB of exactly ``size`` (width, height) as displayed; aspect is not kept.
        ``AREA`` averages all source pixels (the right filter for small thumbnails)."""
        w, h = size
        if self._rot_k % 2:
            w, h = h, w  # the stored picture is sideways
        if self._image is not None and self._image.shape[:2] == (size[1], size[0]):
            return self._image
        with self._lock:
            rgb = convert(self._av, w, h, interpolation=interpolation)
        return self._upright(rgb.to_ndarray())

    def to_frame(self) -> Frame:
        """An eager :class:`~diffcap.timeline.Frame` (full-size RGB)."""
        return Frame(image=self.image, timestamp=self.timestamp)

    def _upright(self, image: np.ndarray) -> np.ndarray:
        if self._rot_k:
            image = np.rot90(image, self._rot_k)
        # Odd widths come back with padded rows, rotations as views: hand out plain arrays.
        return np.ascontiguousarray(image)

    def __repr__(self) -> str:
        return f"LazyFrame(time={self.time:.6f}, size={self.size})"
