"""Where a :class:`~diffcap.video.pyav.PyAVSource` decoder is and how it moves: seeks only
past a keyframe, and peeks at the codec keyframes of a stretch it skips (split out of
``pyav.py``; a mixin over the source's decoding state).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import av

#: A frame "at" a target may sit this much before it (float round-off of the caller's target).
EPS = 1e-6
#: Step back from a keyframe to find the one before it; most keyframes peeked in one skip.
EPS_KEY, MAX_PEEK = 1e-3, 3
#: Longest stretch decoded through (instead of skipped) when its keyframes are not peeked.
THROUGH_MAX = 4.0


class Seeking:
    """Seek decisions; the class using it holds the decoding state declared here."""

    _pending: list[av.VideoFrame]
    _last: av.VideoFrame | None
    _floor: float
    _eof: bool
    _tb: Fraction
    _origin: int
    _stream: Any
    _container: Any
    _gop_seen: float
    _peek_ok: bool
    _skip_below: int | None
    skip_nonref: bool
    min_seek_skip: float
    seek_threshold: float
    peek_keyframes: bool
    on_decode: Any
    seeks: int
    #: (on_decode, its ``changes``) at the last skip decision: a change since means busy footage.
    _changes_seen: tuple[Any, int] = (None, 0)

    def _time(self, f: av.VideoFrame) -> float:
        raise NotImplementedError

    def _restart_iter(self) -> None:
        raise NotImplementedError

    def _next_frame(self) -> av.VideoFrame | None:
        raise NotImplementedError

    def _position(self) -> float:
        if self._pending:
            return self._time(self._pending[-1])
        return self._time(self._last) if self._last is not None else self._floor

    def _begin(self, t: float) -> None:
        """Start of a new call: rewind when a frame before the current position is wanted."""
        self._aim(t)
        if t <= self._floor + EPS:
            self._seek(t)

    def _aim(self, t: float) -> None:
        """Packets before ``t`` cannot answer it: their non-reference frames may be skipped."""
        if self.skip_nonref:
            self._skip_below = self._origin + math.floor((t - EPS) / self._tb)

    def _maybe_seek(self, t: float) -> None:
        if self._eof and not self._pending:
            return
        pos = self._position()
        if t <= pos:
            return
        key = self._keyframe_before(t)
        if key is not None:
            if key > pos + self.min_seek_skip:
                watched = self.peek_keyframes and self.on_decode is not None
                seen = getattr(self.on_decode, "changes", 0) if watched else 0
                mark = self._changes_seen
                busy = mark[0] is self.on_decode and seen > mark[1]
                self._changes_seen = (self.on_decode, seen)
                if watched and busy and self._may_hide_shots(pos, t):
                    return  # the picture just changed: decode this stretch through too
                if watched and not self._peek(pos, key):
                    return  # decode through instead: on_decode sees the whole stretch
                self._seek(t)
                if watched and self._look_inside(seen, pos, t):
                    self._seek(pos)  # back before the stretch: decode through it
        elif t - pos > max(self.seek_threshold, self._gop_seen):
            self._seek(t)

    def _peek(self, pos: float, key: float) -> bool:
        """Decode each indexed keyframe strictly between ``pos`` and ``key`` on its own (one
        seek, one intra frame), so :attr:`on_decode` sees the stretch about to be skipped
        where encoders mark scene changes (x264, x265, libvpx and xvid start shots there).
        When the stretch holds more than MAX_PEEK keyframes (short GOPs: decoding through
        is cheaper) or an earlier peek landed off its keyframe (imprecise seeking, e.g.
        MPEG-PS), nothing is peeked: False (the caller decodes through) for a stretch of at
        most THROUGH_MAX seconds, True (the caller skips it unseen) for a longer one."""
        found: list[float] = []
        k = self._keyframe_before(key - EPS_KEY)
        while k is not None and k > pos + EPS and len(found) <= MAX_PEEK:
            found.append(k)
            k = self._keyframe_before(k - EPS_KEY)
        if not found:
            return True
        if not self._peek_ok or len(found) > MAX_PEEK:
            return key - pos > THROUGH_MAX  # a long stretch is skipped unseen, as without peeks
        # Index times may be decode times (earlier than the pictures' by the reorder delay)
        # while seeks take presentation times: aim at the *next* keyframe's index time, which
        # lands on this one. The frame decoded there is all on_decode needs.
        last = pos
        for k, nxt in zip(reversed(found), [*reversed(found[:-1]), key], strict=True):
            self._seek_once(nxt, nxt)
            landed = self._time(self._last) if self._last is not None else -math.inf
            if not (last < landed and k - EPS_KEY <= landed < nxt + 1.0):
                self._peek_ok = False  # off target: seeking here is not precise
            last = max(last, landed)
        return True

    def _look_inside(self, seen: int, pos: float, t: float) -> bool:
        """After a skip from ``pos`` towards ``t``: go back and decode the stretch through?
        Yes when :attr:`on_decode` saw the picture change on the keyframes it was shown
        (peeked, landed on: its ``changes`` grew past ``seen``), so a shot may start and end
        inside the stretch, and :meth:`_may_hide_shots`."""
        if getattr(self.on_decode, "changes", 0) <= seen:
            return False
        return self._may_hide_shots(pos, t)

    def _may_hide_shots(self, pos: float, t: float) -> bool:
        """Whether a shot could hide in the stretch ``(pos, t)`` and decoding it all costs at
        most THROUGH_MAX seconds (from the keyframe before ``pos``): not when
        :attr:`on_decode` reports that this encoder starts shots on keyframes
        (``keys_mark_cuts``: then the peeks see every cut)."""
        if getattr(self.on_decode, "keys_mark_cuts", True):
            return False
        back = self._keyframe_before(pos)
        return back is not None and t - back <= THROUGH_MAX

    def _keyframe_before(self, t: float) -> float | None:
        """Time of the last indexed keyframe at or before ``t``; None without an index."""
        entries = self._stream.index_entries
        if entries is None or len(entries) == 0:
            return None
        i = entries.search_timestamp(self._origin + int(t / self._tb), backward=True)
        if i < 0:
            return None
        return float((entries[i].timestamp - self._origin) * self._tb)

    def _seek(self, t: float) -> None:
        """Put the decoder on the keyframe at or before ``t``. Steps further back when the
        demuxer lands after ``t`` (imprecise index) or on missing data (truncated file)."""
        tried: set[float] = set()
        for back in (0.0, 1.0, 5.0, 30.0):
            at = max(t - back, 0.0)
            if at not in tried and self._seek_once(at, t):
                return
            tried.add(at)
        self._seek_once(None, t)

    def _seek_once(self, at: float | None, t: float) -> bool:
        self.seeks += 1
        if at is None:
            self._container.seek(0, backward=True)
        else:
            offset = self._origin + int(at / self._tb)
            self._container.seek(offset, stream=self._stream, backward=True)
        self._restart_iter()
        f = self._next_frame()
        if f is None:
            return False
        landed = self._time(f)
        if landed > t + EPS and at is not None and at > 0.0:
            return False
        self._gop_seen = max(self._gop_seen, t - landed)  # the GOP is at least this long
        self._pending.append(f)
        return True
