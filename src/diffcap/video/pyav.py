"""The PyAV :class:`~diffcap.video.base.VideoSource`: frames by presentation time.

    from diffcap.video.pyav import PyAVSource
    with PyAVSource("clip.mp4") as src:
        for frame in src.frames_at([0.0, 2.0, 4.0]):
            frame.time, frame.image.shape     # exact PTS seconds, upright RGB

How it samples: one sequential, multi-threaded decode pass; only the frames that answer a
target are converted to RGB (``to_ndarray`` is the expensive part for sparse sampling). It
seeks only when the next target is far away *and* a keyframe lies between the current
position and the target (known from the container's index, or learned from the keyframes
seen so far), so long-GOP files are never re-decoded from the same keyframe twice. At most a
few decoded frames are alive at any time, whatever the video's length.

Damage: packets that fail to decode are skipped and counted; when the stream ends well
before the duration its header claims, ``truncated_at`` is set and a WARNING is logged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from diffcap.errors import CorruptVideo
from diffcap.timeline import Frame, Timestamp, VideoInfo
from diffcap.video.base import VideoSource
from diffcap.video.lazyframe import LazyFrame, convert
from diffcap.video.probe import (
    MAX_PIXELS,
    build_info,
    check_path,
    check_size,
    expected_end,
    open_container,
)
from diffcap.video.probe import select_stream as _select_stream
from diffcap.video.seeking import EPS, Seeking

log = logging.getLogger(__name__)


class PyAVSource(Seeking, VideoSource):
    """Reads one video with PyAV. Not thread-safe; open one per worker.

    ``min_seek_skip``: with a keyframe index, seek when the keyframe before the next target
    lies more than this many seconds past the current position (that much decoding saved).
    ``seek_threshold``: without an index, seek only when the target is further than this
    and further than the longest keyframe distance seen so far.
    ``threads``: multi-threaded decoding (frame + slice threads).
    ``skip_nonref``: do not decode non-reference frames that lie before the next target
    (nothing refers to them and they cannot be the answer, so timestamps stay exact).
    ``max_pixels``: refuse (:class:`~diffcap.video.probe.FrameTooLarge`) frames larger than
    this, before decoding any (None: no limit).
    ``on_decode``: called with every frame the decoder produces, in presentation order (a
    re-decoded stretch again), on the thread that iterates; set it with :meth:`watch`.
    ``peek_keyframes``: when skipping ahead with ``on_decode`` set, first decode each
    indexed keyframe of the skipped stretch alone, so the callback sees them too.
    ``export_mvs``: have the decoder attach codec motion vectors to each frame (side data
    ``MOTION_VECTORS``; read by :class:`~diffcap.video.motion.MotionProbe`, see :meth:`tap`).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        min_seek_skip: float = 0.5,
        seek_threshold: float = 4.0,
        threads: bool | str = True,
        skip_nonref: bool = True,
        max_pixels: int | None = MAX_PIXELS,
        export_mvs: bool = False,
    ) -> None:
        self.path = check_path(path)
        self.min_seek_skip = min_seek_skip
        self.seek_threshold = seek_threshold
        self.skip_nonref = skip_nonref
        self._init_state()
        self._container = open_container(self.path)
        try:
            self._stream = _select_stream(self._container, self.path)
            check_size(self._stream, self.path, max_pixels)
            if threads:
                self._stream.thread_type = "AUTO" if threads is True else threads
            if export_mvs:  # before the first decode, or the decoder ignores it
                self._stream.codec_context.options = {"flags2": "+export_mvs"}
            tb = self._stream.time_base
            if tb is None:
                raise CorruptVideo(self.path, "the video stream declares no time base")
            self._tb = Fraction(tb)
            self._expected, self._slack = 0.0, 0.0  # known after the first frame
            self._restart_iter()
            first = self._next_frame()
            if first is None:
                raise CorruptVideo(
                    self.path,
                    "no frame could be decoded",
                    decoded_until=0.0,
                    hint="the file is damaged; re-download or re-encode it",
                )
        except BaseException:
            self._container.close()
            raise
        self._first = first
        self._origin = self._pts(first)
        self._expected, self._slack = expected_end(
            self._container, self._stream, float(self._origin * self._tb)
        )
        self._rot_k = int(first.rotation or 0) // 90 % 4
        self._pending.append(first)

    def _init_state(self) -> None:
        self._skip_below: int | None = None  # packets with a smaller PTS may be skipped
        #: Seconds up to which frames were decodable, when the stream ended early.
        self.truncated_at: float | None = None
        #: Packets that failed to decode (their frames are lost).
        self.decode_errors = 0
        #: Frames the decoder produced so far (work done; converted frames are far fewer).
        self.frames_decoded = 0
        self.seeks = 0
        self.on_decode: Callable[[av.VideoFrame], None] | None = None
        #: Callbacks that see every decoded frame too, for the source's life (see :meth:`tap`).
        self.taps: list[Callable[[av.VideoFrame], None]] = []
        #: With ``on_decode``: before skipping ahead, decode the keyframes in between alone.
        self.peek_keyframes = False
        self._peek_ok = True  # peeks have landed where the index said
        self._origin = 0
        self._gop_seen = 0.0  # longest keyframe distance seen (for files without an index)
        self._last_key: float | None = None
        self._converted: tuple[int, Frame] | None = None
        self._warned: set[str] = set()
        self._info: VideoInfo | None = None

    # --- public API -----------------------------------------------------------------------

    def info(self, *, exact_count: bool = False) -> VideoInfo:
        """Probe facts; ``exact_count`` decodes the file to count frames when the container
        does not store the count."""
        if self._info is None or (exact_count and not self._info.frame_count_exact):
            self._info = build_info(
                self.path, self._container, self._stream, self._first, exact_count=exact_count
            )
        return self._info

    def frames(
        self, start: float = 0.0, end: float | None = None, every: float | None = None
    ) -> Iterator[Frame]:
        if every is not None and every <= 0:
            raise ValueError(f"every must be > 0 seconds, got {every}")
        if end is not None and end <= start:
            return
        self._begin(start)
        if every is None:
            yield from self._all_frames(start, end)
            return
        last_pts, k = None, 0
        while True:
            t = start + k * every  # multiply, never accumulate: no drift over long videos
            k += 1
            if end is not None and t >= end:
                return
            f = self._locate(t)
            if f is None or (end is not None and self._time(f) >= end):
                return
            if f.pts != last_pts:
                last_pts = f.pts
                yield self._convert(f)

    def frames_at(self, times: Iterable[float]) -> Iterator[Frame]:
        for f in self._answers(times):
            yield self._convert(f)

    def lazy_frames_at(self, times: Iterable[float]) -> Iterator[LazyFrame]:
        """Like :meth:`frames_at`, but each answer stays a decoded frame that converts to RGB
        only when asked, at the size asked (see :mod:`diffcap.video.lazyframe`). Consecutive
        targets answered by one frame get the same object."""
        last: LazyFrame | None = None
        for f in self._answers(times):
            if last is None or last.timestamp.pts != self._pts(f):
                last = self.lazy(f)
            yield last

    def watch(self, callback: Callable[[av.VideoFrame], None] | None) -> None:
        """Set :attr:`on_decode`; ``callback`` first sees the decoded frames still waiting to
        be answered (the first frame of a fresh source), so it misses none."""
        self.on_decode = callback
        if callback is not None:
            for f in reversed(self._pending):  # a stack: the oldest frame is last
                callback(f)

    def tap(self, callback: Callable[[av.VideoFrame], None]) -> None:
        """Add a callback that sees every decoded frame from now on, like ``on_decode``
        (first the frames still waiting to be answered), beside it."""
        self.taps.append(callback)
        for f in reversed(self._pending):
            callback(f)

    def time_of(self, frame: av.VideoFrame) -> float:
        """Seconds of a decoded frame of this source from its first frame."""
        return self._time(frame)

    def lazy(self, frame: av.VideoFrame) -> LazyFrame:
        """A decoded frame of this source (e.g. one seen by ``on_decode``) as a
        :class:`LazyFrame` with its exact timestamp."""
        return LazyFrame(frame, Timestamp(self._pts(frame), self._tb, self._origin), self._rot_k)

    def _answers(self, times: Iterable[float]) -> Iterator[av.VideoFrame]:
        # Consumed one time at a time: a plan of millions of targets is never held whole.
        prev: float | None = None
        for t in times:
            if prev is None:
                self._begin(t)
            elif t < prev:
                raise ValueError("frames_at() needs ascending times")
            prev = t
            f = self._locate(t)
            if f is None:  # past the end: the last frame there is
                f = self._final_frame()
            yield f

    def close(self) -> None:
        self._pending.clear()
        self._container.close()

    @property
    def rotation(self) -> int:
        """Display rotation in degrees counter-clockwise (0, 90, 180, 270)."""
        return self._rot_k * 90

    # --- decoding -------------------------------------------------------------------------

    def _restart_iter(self) -> None:
        self._iter = self._decode_packets()
        self._pending: list[av.VideoFrame] = []
        self._floor = -math.inf  # time of the last frame passed over since the last seek
        self._last: av.VideoFrame | None = None  # newest decoded frame
        self._last_key = None
        self._eof = False
        self._skipped_any = False  # non-reference frames may have been dropped since here
        self._skipped_to: float = -math.inf  # highest PTS of a packet sent while skipping

    def _decode_packets(self) -> Iterator[av.VideoFrame]:
        """Frames in presentation order from the container's current position.

        A packet that fails to decode is skipped (counted); a demux error ends the stream.
        """
        ctx, skipping = self._stream.codec_context, False
        try:
            for packet in self._container.demux(self._stream):
                skip = (
                    self._skip_below is not None
                    and packet.pts is not None
                    and (packet.pts < self._skip_below)
                )
                if skip != skipping:  # decided per packet, so the frame at the target is kept
                    ctx.skip_frame, skipping = ("NONREF" if skip else "DEFAULT"), skip
                if skip and packet.size:  # (the empty packet at the end only flushes)
                    self._skipped_any = True
                    pts = math.inf if packet.pts is None else packet.pts
                    self._skipped_to = max(self._skipped_to, pts)
                try:
                    frames = self._stream.decode(packet)
                except av.error.InvalidDataError:
                    self.decode_errors += 1
                    continue
                yield from frames
        except av.error.FFmpegError as exc:
            log.debug("%s: demuxing stopped: %s", self.path, exc)
            self._eof = True
            self._note_damage(forced=True)
            return
        self._eof = True
        self._note_damage(forced=False)

    def _next_frame(self) -> av.VideoFrame | None:
        if self._pending:
            return self._pending.pop()
        f = next(self._iter, None)
        if f is not None:
            self.frames_decoded += 1
            self._last = f
            if f.key_frame:
                self._learn_gop(f)
            if self.on_decode is not None:
                self.on_decode(f)
            for tap in self.taps:
                tap(f)
        return f

    def _learn_gop(self, f: av.VideoFrame) -> None:
        t = self._time(f)
        if self._last_key is not None and t > self._last_key:
            self._gop_seen = max(self._gop_seen, t - self._last_key)
        self._last_key = t

    def _time(self, f: av.VideoFrame) -> float:
        return float((self._pts(f) - self._origin) * self._tb)

    @staticmethod
    def _pts(f: av.VideoFrame) -> int:
        # Some AVI/raw streams give no PTS; the decoder's best guess is the next best thing.
        return f.pts if f.pts is not None else (f.dts or 0)

    def _convert(self, f: av.VideoFrame) -> Frame:
        """RGB, upright; the last conversion is reused when a frame answers several targets."""
        pts = self._pts(f)
        if self._converted and self._converted[0] == pts:
            return self._converted[1]
        image: np.ndarray = convert(f, purpose="full").to_ndarray()  # 10-bit, odd sizes: swscale
        if self._rot_k:
            image = np.rot90(image, self._rot_k)
        # Odd widths come back with padded rows, rotations as views: hand out plain arrays.
        image = np.ascontiguousarray(image)
        frame = Frame(image=image, timestamp=Timestamp(pts, self._tb, self._origin))
        self._converted = (pts, frame)
        return frame

    # --- positioning ----------------------------------------------------------------------

    def _all_frames(self, start: float, end: float | None) -> Iterator[Frame]:
        f = self._locate(start)  # pending from here on until consumed
        while f is not None and (end is None or self._time(f) < end):
            self._pending.pop()
            self._floor = self._time(f)
            yield self._convert(f)
            f = self._next_frame()
            if f is not None:
                self._pending.append(f)

    def _locate(self, t: float) -> av.VideoFrame | None:
        """The first frame at or after ``t`` (kept pending: the next target may want it too);
        None at the end of the stream."""
        self._aim(t)
        self._maybe_seek(t)
        while True:
            f = self._next_frame()
            if f is None:
                self._floor = max(self._floor, t - 2 * EPS)  # skipped frames included
                return None
            if self._time(f) >= t - EPS:
                self._pending.append(f)
                # Skipped frames before t were passed over too: an earlier target needs a seek.
                self._floor = max(self._floor, t - 2 * EPS)
                return f
            self._floor = self._time(f)

    def _final_frame(self) -> av.VideoFrame:
        """The stream's last frame. When a packet that may have been skipped (non-reference,
        sent while skipping) shows a later PTS than the last decoded frame, the very last
        frame is among the skipped: decode the last GOP again without skipping. (Encoders
        usually end on a reference frame, so this is rare.)"""
        last = self._last
        if self._skipped_any and last is not None and self._skipped_to > self._pts(last):
            self._skip_below = None
            self._seek(self._time(last))
            while self._next_frame() is not None:
                pass
            self._floor = self._time(self._last) if self._last is not None else self._floor
        return self._last or self._first

    # --- damage ---------------------------------------------------------------------------

    def _note_damage(self, *, forced: bool) -> None:
        """At the end of the stream: compare how far frames went with what the header says;
        say what was lost, once per kind."""
        if self._last is None:
            return  # a seek into missing data; the caller steps back and tries again
        last = self._time(self._last)
        short = self._expected > 0 and last + self._slack < self._expected
        if (forced or short) and (self.truncated_at is None or last > self.truncated_at):
            self.truncated_at = round(last, 6)
            self._warn_once(
                "truncated",
                "%s: frames end at %.2fs of %.2fs; the rest is lost (truncated or damaged file)",
                self.path,
                last,
                self._expected,
            )
        if self.decode_errors:
            self._warn_once(
                "packets",
                "%s: %d packet(s) could not be decoded; their frames are lost",
                self.path,
                self.decode_errors,
            )

    def _warn_once(self, kind: str, msg: str, *args: object) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            log.warning(msg, *args)
