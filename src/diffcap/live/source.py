"""A live video source: an HLS playlist that is still growing, an RTSP stream, or a local
file that is still being written, read with PyAV as it plays.

:meth:`LiveSource.items` yields a :class:`~diffcap.live.options.Candidate` every
``interval`` seconds of stream time, a :class:`~diffcap.live.options.Gap` when the stream
came back after it was lost, and one :class:`~diffcap.live.options.Ended` last. A lost
connection (an error, no frame for ``stall_s``, an HLS reader that gave up on a playlist
without ``EXT-X-ENDLIST``) is opened again with a doubling backoff until ``give_up_s``.

    src = LiveSource("http://127.0.0.1:8000/live.m3u8", LiveOptions(interval=2.0))
    for item in src.items(stop_event):
        ...

Stream time counts seconds from the first frame this run saw and never goes back: within a
connection it follows the frames' PTS; after an outage (or a restart of diffcap, see
``origin``) it resumes advanced by the outage's wall-clock length. A growing file keeps every
frame, so it is read on from where the run stopped instead (no gap).
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from diffcap.live.hls import WallClock, fetch_playlist
from diffcap.live.options import Candidate, Ended, Gap, LiveOptions
from diffcap.video.lazyframe import convert

log = logging.getLogger(__name__)

Item = Candidate | Gap | Ended
#: Seconds given to open a network stream (RTSP listen waits up to ``give_up_s``).
OPEN_TIMEOUT_S = 10.0


def source_kind(source: str) -> str:
    """``hls``, ``rtsp`` or ``file`` (any other URL FFmpeg reads: ``stream``)."""
    low = source.lower()
    if low.startswith(("rtsp://", "rtsps://")):
        return "rtsp"
    if low.startswith(("http://", "https://")):
        return "hls" if ".m3u8" in low else "stream"
    return "file"


class TailFile(io.RawIOBase):
    """A file that is still being written, read like a pipe: a read at the end waits for
    more bytes, and ends the file only when it has not grown for ``idle_s`` (or ``stop``)."""

    def __init__(self, path: Path, idle_s: float, stop: threading.Event) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115 (closed by close())
        self.idle_s, self.stop = idle_s, stop
        self._last_data = time.monotonic()
        self.finished = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False  # a demuxer must not look for the end of a file that has none yet

    def readinto(self, buf: Any) -> int:
        while not self.finished:
            n = self._fh.readinto(buf)
            if n:
                self._last_data = time.monotonic()
                return n
            if self.stop.is_set() or time.monotonic() - self._last_data >= self.idle_s:
                self.finished = True
                break
            self.stop.wait(0.05)
        return 0

    def close(self) -> None:
        self._fh.close()
        super().close()


@dataclass
class _Timing:
    """One connection's clock: its first frame's media time and the run's offset of it."""

    first: float | None = None
    offset: float = 0.0
    prev: float | None = None
    next_t: float | None = None

    def due(self, t: float, interval: float) -> bool:
        """Whether the frame at ``t`` is the next candidate (a grid from the connection's
        first candidate, so candidates do not drift)."""
        if self.next_t is not None and t < self.next_t - 1e-6:
            return False
        late = 0 if self.next_t is None else int((t - self.next_t) // interval)
        self.next_t = (t if self.next_t is None else self.next_t) + (late + 1) * interval
        return True


@dataclass
class _Conn:
    container: Any
    clock: WallClock | None = None
    tail: TailFile | None = None


class LiveSource:
    """See the module docstring. ``origin``: (stream time, unix time) where an earlier
    process of the same run stopped, so this one continues the run's clock."""

    def __init__(
        self, source: str, opts: LiveOptions, origin: tuple[float, float] | None = None
    ) -> None:
        self.source, self.opts = source, opts
        self.kind = source_kind(source)
        self.origin = origin
        #: Stream time, unix time, monotonic time and wall source of the last frame read.
        self.last: tuple[float, float, float, str] | None = None
        self.connections = 0

    # -- opening ---------------------------------------------------------------------------
    def _open(self, stop: threading.Event) -> _Conn:
        o = self.opts
        if self.kind == "file":
            tail = TailFile(Path(self.source), o.file_idle_s, stop)
            opts = {"probesize": "65536", "analyzeduration": "1000000"}
            return _Conn(av.open(tail, options=opts), tail=tail)
        if self.kind == "rtsp":
            # listen_timeout (seconds) implies listen mode; FFmpeg 7 refuses rtsp_flags=listen
            # with its default of -1 ("Numerical result out of range")
            if o.rtsp_listen:
                opts, wait = {"listen_timeout": str(max(1, round(o.give_up_s)))}, o.give_up_s + 5
            else:
                opts, wait = {"rtsp_transport": "tcp"}, OPEN_TIMEOUT_S
            return _Conn(av.open(self.source, options=opts, timeout=(wait, o.stall_s)))
        if self.kind == "hls":
            return self._open_hls()
        return _Conn(av.open(self.source, timeout=(OPEN_TIMEOUT_S, o.stall_s)))

    def _open_hls(self) -> _Conn:
        pl = fetch_playlist(self.source)
        if not pl.segments:
            raise OSError(f"{self.source}: the playlist has no segment yet")
        fresh = self.connections == 0 and self.origin is None
        index = 0 if (fresh and self.opts.from_start) else len(pl.segments) - 1
        per_reload = max(pl.target_duration / 2, 0.5)
        opts = {
            "live_start_index": str(index),
            # give up on a playlist that stopped growing after about stall_s
            "m3u8_hold_counters": str(max(2, round(self.opts.stall_s / per_reload))),
        }
        container = av.open(self.source, options=opts, timeout=(OPEN_TIMEOUT_S, self.opts.stall_s))
        return _Conn(container, clock=WallClock(self.source, pl.segments[index].sequence, pl))

    # -- the loop ------------------------------------------------------------------------
    def items(self, stop: threading.Event) -> Iterator[Item]:
        """Candidates, gaps and one Ended (see the module docstring)."""
        lost_since, backoff, reason = time.monotonic(), self.opts.backoff_s, "not opened"
        while not stop.is_set():
            try:
                conn = self._open(stop)
            except (av.FFmpegError, OSError, ValueError) as exc:
                reason = f"cannot open: {_one_line(exc)}"
                if time.monotonic() - lost_since > self.opts.give_up_s:
                    yield Ended(f"gave up after {self.opts.give_up_s:g} s: {reason}")
                    return
                log.info("%s: %s; again in %.1f s", self.source, reason, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, self.opts.backoff_max_s)
                continue
            self.connections += 1
            try:
                outcome = yield from self._read(conn, stop, reason)
            finally:
                _close(conn)
            if outcome is not None:
                yield Ended(outcome)
                return
            lost_since, backoff, reason = time.monotonic(), self.opts.backoff_s, "stalled"
            if self.last is not None:
                lost_since = self.last[2]
        yield Ended("stopped")

    def _read(
        self, conn: _Conn, stop: threading.Event, why: str
    ) -> Generator[Item, None, str | None]:
        """Read one connection; returns an end reason, or None when it was lost."""
        stream = conn.container.streams.video[0]
        stream.thread_type = "AUTO"
        tb = float(stream.time_base or 0) or 1 / 90000
        timing = _Timing()
        if self.kind == "file" and stream.start_time is not None:
            # A file's own clock (from its first frame) continues across reconnects/restarts.
            timing.first = timing.prev = stream.start_time * tb
        skip_until = self._skip_until()
        try:
            for frame in self._frames(conn, stream, skip_until, timing.first):
                if stop.is_set():
                    return "stopped"
                now, mono = time.time(), time.monotonic()
                media = (frame.pts or 0) * tb
                gap = self._place(timing, conn, media, now, mono, why)
                if gap is not None:
                    yield gap
                t = timing.offset + media - (timing.first or 0.0)
                if t < skip_until:
                    continue
                wall, src = self._wall(conn, timing, media, now)
                self.last = (t, wall, mono, src)
                if timing.due(t, self.opts.interval):
                    yield Candidate(self._image(frame), t, wall, src, mono)
        except (av.FFmpegError, OSError) as exc:
            log.info("%s: lost: %s", self.source, _one_line(exc))
            return "stopped" if stop.is_set() else None
        return self._after_eof(conn, stop)

    def _place(
        self, timing: _Timing, conn: _Conn, media: float, now: float, mono: float, why: str
    ) -> Gap | None:
        """Anchor a connection's first frame on the run's clock (the gap it closes), and
        re-anchor after a jump of the PTS (a discontinuity, a restarted encoder)."""
        if timing.first is None:
            timing.first = timing.prev = media
            wall, src = self._wall(conn, timing, media, now)
            timing.offset, gap = self._connect(wall, src, now, mono, why)
            return gap
        prev = timing.prev if timing.prev is not None else media
        if self.last is not None and not prev - 1.0 <= media <= prev + self.opts.stall_s:
            log.info("%s: timestamps jumped %.2f -> %.2f s", self.source, prev, media)
            timing.first, timing.offset = media, self.last[0] + 0.04
            conn.clock = None  # the playlist's segment walk no longer matches
        timing.prev = media
        return None

    def _wall(self, conn: _Conn, timing: _Timing, media: float, now: float) -> tuple[float, str]:
        if conn.clock is not None:
            w = conn.clock.wall(media - (timing.first or 0.0))
            if w is not None:
                return w, "program_date_time"
        return now, "arrival"

    def _frames(
        self, conn: _Conn, stream: Any, skip_until: float, first: float | None
    ) -> Iterator[Any]:
        """Decoded frames; a file read on from ``skip_until`` is demuxed without decoding up
        to a keyframe shortly before it."""
        decoding = skip_until <= 0 or first is None
        tb = float(stream.time_base or 0) or 1 / 90000
        for packet in conn.container.demux(stream):
            if not decoding:
                t = None if packet.pts is None else packet.pts * tb - (first or 0.0)
                if t is None or not (packet.is_keyframe and t >= skip_until - 30):
                    continue
                decoding = True
            yield from packet.decode()

    def _skip_until(self) -> float:
        """A file keeps every frame: a reconnect (or a restart) reads on after the last."""
        if self.kind != "file":
            return 0.0
        if self.last is not None:
            return self.last[0] + 1e-3
        return self.origin[0] + 1e-3 if self.origin is not None else 0.0

    def _connect(
        self, wall: float, src: str, now: float, mono: float, why: str
    ) -> tuple[float, Gap | None]:
        """Stream-time offset of a new connection's first frame, and the gap it closes: the
        outage's length by the broadcaster's clock when both ends have it, else by ours."""
        if self.kind == "file":
            return 0.0, None
        if self.last is not None:
            t0, w0, m0, src0 = self.last
            outage = wall - w0 if src == src0 == "program_date_time" else mono - m0
            start = t0 + max(0.0, outage)
            return start, Gap(t0, start, w0, wall, why)
        if self.origin is not None:
            t0, w0 = self.origin
            start = t0 + max(0.0, now - w0)
            return start, Gap(t0, start, w0, wall, "diffcap restarted")
        return 0.0, None

    def _after_eof(self, conn: _Conn, stop: threading.Event) -> str | None:
        if stop.is_set():
            return "stopped"
        if self.kind == "file":
            return "the file stopped growing"
        if self.kind == "hls":
            try:
                if fetch_playlist(self.source).ended:
                    return "the playlist ended (EXT-X-ENDLIST)"
            except (OSError, ValueError):
                pass
            return None
        return None if self.kind == "rtsp" else "end of stream"

    def _image(self, frame: Any) -> np.ndarray:
        w, h = frame.width, frame.height
        scale = min(1.0, self.opts.max_side / max(w, h))
        size = (max(2, round(w * scale)), max(2, round(h * scale)))
        return convert(frame, size[0], size[1]).to_ndarray()


def _close(conn: _Conn) -> None:
    with contextlib.suppress(av.FFmpegError, OSError):
        conn.container.close()
    if conn.tail is not None:
        conn.tail.close()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
