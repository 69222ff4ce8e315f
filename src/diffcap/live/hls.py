"""A live HLS media playlist read over HTTP: segments, their durations and wall clock.

FFmpeg's HLS demuxer (and so PyAV) does not expose ``EXT-X-PROGRAM-DATE-TIME`` nor which
segment a frame came from, so diffcap fetches the playlist itself: to choose the segment the
reader starts at (and so anchor stream time to a segment), to give each frame the wall-clock
time the broadcaster stamped, and to tell a stream that ended (``EXT-X-ENDLIST``) from one
that stalled.

    pl = fetch_playlist("http://127.0.0.1:8000/live.m3u8")
    pl.segments[-1].sequence, pl.segments[-1].duration, pl.segments[-1].wall   # 41, 2.0, 1.7e9
    pl.ended                                                                   # EXT-X-ENDLIST
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime

#: Seconds a playlist fetch may take.
FETCH_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Segment:
    sequence: int
    duration: float
    uri: str
    #: Unix time of the segment's first frame (``EXT-X-PROGRAM-DATE-TIME``), or None.
    wall: float | None = None
    discontinuity: bool = False


@dataclass
class Playlist:
    segments: list[Segment] = field(default_factory=list)
    target_duration: float = 0.0
    ended: bool = False
    #: A master playlist (variants, no segments): the first variant's URL.
    variant: str | None = None


def parse_time(text: str) -> float | None:
    """An ISO 8601 date-time as in ``EXT-X-PROGRAM-DATE-TIME`` -> Unix seconds (None if bad)."""
    value = text.strip().replace("Z", "+00:00")
    if len(value) > 5 and value[-5] in "+-" and value[-3] != ":":
        value = value[:-2] + ":" + value[-2:]  # +0000 -> +00:00 (ffmpeg writes the former)
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def parse_playlist(text: str, base_url: str = "") -> Playlist:
    """Parse an HLS playlist's text (RFC 8216). A segment without its own program date-time
    gets its predecessor's plus the predecessor's duration (as the RFC says players do)."""
    pl = Playlist()
    sequence, duration, wall, disc = 0, 0.0, None, False
    prev: Segment | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            sequence = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-TARGETDURATION:"):
            pl.target_duration = float(line.split(":", 1)[1])
        elif line.startswith("#EXTINF:"):
            duration = float(line.split(":", 1)[1].split(",", 1)[0])
        elif line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            wall = parse_time(line.split(":", 1)[1])
        elif line == "#EXT-X-DISCONTINUITY":
            disc = True
        elif line.startswith("#EXT-X-ENDLIST"):
            pl.ended = True
        elif line.startswith("#EXT-X-STREAM-INF") and pl.variant is None:
            pl.variant = ""  # the next URI line names it
        elif line and not line.startswith("#"):
            uri = urllib.parse.urljoin(base_url, line)
            if pl.variant == "":
                pl.variant = uri
                continue
            if wall is None and prev is not None and prev.wall is not None and not disc:
                wall = prev.wall + prev.duration
            prev = Segment(sequence, duration, uri, wall, disc)
            pl.segments.append(prev)
            sequence, duration, wall, disc = sequence + 1, 0.0, None, False
    return pl


def fetch_playlist(url: str, timeout: float = FETCH_TIMEOUT_S) -> Playlist:
    """GET and parse ``url`` (a master playlist is followed to its first variant)."""
    for _ in range(2):
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            text = resp.read().decode("utf-8", "replace")
        pl = parse_playlist(text, url)
        if not pl.variant:
            return pl
        url = pl.variant
    return pl


class WallClock:
    """Maps media time read from one connection to wall-clock time by the playlist.

    ``anchor`` is the sequence number of the segment the reader started at; the first
    frame's media time is that segment's start. A frame ``e`` seconds of media later lies in
    the segment where the cumulative ``EXTINF`` durations from the anchor reach ``e``, and
    its wall time is that segment's program date-time plus the rest. Segments the reader
    has passed are forgotten, so memory stays bounded on a stream of any length.
    """

    def __init__(self, url: str, anchor: int, playlist: Playlist | None = None) -> None:
        self.url = url
        self.anchor = anchor
        #: Media seconds (from the first frame) at which segment ``anchor`` starts.
        self.base = 0.0
        self.segments: dict[int, Segment] = {}
        if playlist is not None:
            self.update(playlist)

    def update(self, pl: Playlist) -> None:
        for seg in pl.segments:
            if seg.sequence >= self.anchor:
                self.segments[seg.sequence] = seg

    def wall(self, elapsed: float) -> float | None:
        """Wall time of the frame ``elapsed`` seconds of media after the first (None when the
        playlist gives no program date-time for it)."""
        found = self._find(elapsed)
        if found is None:
            try:
                self.update(fetch_playlist(self.url))
            except (OSError, ValueError):
                return None
            found = self._find(elapsed)
        if found is None:
            return None
        seg, start = found
        return None if seg.wall is None else seg.wall + (elapsed - start)

    def _find(self, elapsed: float) -> tuple[Segment, float] | None:
        # Forget what the reader has passed (frames come in time order).
        while (seg := self.segments.get(self.anchor)) is not None and (
            elapsed >= self.base + seg.duration and self.anchor + 1 in self.segments
        ):
            self.base += seg.duration
            del self.segments[self.anchor]
            self.anchor += 1
        seq, start = self.anchor, self.base
        while (seg := self.segments.get(seq)) is not None:
            if elapsed < start + seg.duration:
                return seg, start
            start += seg.duration
            seq += 1
        return None
