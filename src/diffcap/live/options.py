"""Settings of live captioning (``diffcap caption --live``) and what a live source yields.

opts = LiveOptions(interval=2.0, queue=1, summary_every_s=300)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class LiveOptions:
    """How a live source is read, sampled and captioned (docs/live.md lists them)."""

    #: Seconds of stream time between candidate frames (``keyframes.interval`` by default).
    interval: float = 2.0
    #: Keyframes that may wait for the model; when full, the oldest waiting one is skipped.
    queue: int = 1
    #: Seconds between rolling summaries of the last window (0: none until the end).
    summary_every_s: float = 300.0
    #: A keyframe is forced when none was kept for this long (a still scene still reports).
    max_keyframe_gap_s: float = 60.0
    #: No frame for this long: the connection is deemed lost and opened again.
    stall_s: float = 10.0
    #: Reconnect attempts stop after this long without a frame: the stream has ended.
    give_up_s: float = 120.0
    #: First and largest wait between reconnect attempts (doubling in between).
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    #: A growing file that has not grown for this long is finished.
    file_idle_s: float = 10.0
    #: HLS: start at the playlist's first segment (default: the newest, the live edge).
    from_start: bool = False
    #: RTSP: listen for a publisher (``ffmpeg -f rtsp rtsp://host:port/path`` pushes to us).
    rtsp_listen: bool = False
    #: Stop after this many seconds of wall time (None: until the stream ends).
    duration: float | None = None
    #: Longest side of candidate images (the embedder sees a thumbnail of it).
    max_side: int = 1024


@dataclass
class Candidate:
    """One candidate frame: its RGB image and its times."""

    image: np.ndarray
    #: Seconds from the start of the stream as this run counts it (monotonic across
    #: reconnects and restarts; an outage advances it by its wall-clock length).
    time: float
    #: Unix time the frame was shown at the source (HLS program date-time) or arrived here.
    wall: float
    wall_source: str
    #: time.monotonic() when the decoder produced it (the start of its caption delay).
    arrival: float


@dataclass
class Gap:
    """The stream was lost from ``start`` to ``end`` (stream seconds): nothing was seen."""

    start: float
    end: float
    wall_start: float
    wall_end: float
    reason: str


@dataclass
class Ended:
    """The stream is over (ENDLIST, a finished file, reconnects given up, or stopped)."""

    reason: str
