"""Where to look: the time window, the target times and their kinds (no decoding).

    start, end, truncated = plan_window(info, cfg)        # or KeyframesSkipped
    times, kinds = plan_targets(start, end, 2.0, final_target(info, start, end), probes=True)
    # kinds: "cand" every interval, "probe" in the first interval, "cut", "final" (last)

Split out of :mod:`diffcap.keyframes.extract`, which re-exports these names.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction

from diffcap.config import KeyframeConfig
from diffcap.errors import ConfigError, DiffcapError
from diffcap.keyframes.select import candidate_count, iter_candidate_times
from diffcap.timeline import VideoInfo

#: When the first candidate is solid (a fade-in, a black leader), this many extra probes
#: spread over the first interval find where the picture starts, instead of waiting a whole
#: interval for the next candidate.
LEAD_PROBES = 8
#: Most candidate times one video may have (window / interval): a bound on work and on the
#: run's time, with a clear error, for an ``--interval`` far too small for the video.
MAX_CANDIDATES = 5_000_000
#: Frame duration assumed when a video declares no frame rate.
FALLBACK_FRAME = 1 / 30


class KeyframesSkipped(DiffcapError):
    """A video was not processed on purpose (``reason``: ``empty_window``)."""

    reason = "skipped"

    def __init__(self, path: object, message: str, *, reason: str, hint: str | None = None):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {message}", hint=hint)


def plan_window(info: VideoInfo, cfg: KeyframeConfig) -> tuple[float, float, bool]:
    """(start, end, truncated) in seconds; raises :class:`KeyframesSkipped` when the window
    is empty. ``max_seconds`` truncates (dropping short or long videos is the filter's job:
    ``filter.min_duration`` / ``filter.max_duration``)."""
    start = cfg.start or 0.0
    end = info.duration if cfg.end is None else min(cfg.end, info.duration)
    truncated = False
    if cfg.max_seconds is not None and end - start > cfg.max_seconds:
        end, truncated = start + cfg.max_seconds, True
    if end <= start:
        raise KeyframesSkipped(
            info.path,
            f"empty time window [{start:g}, {end:g}) in a {info.duration:.2f} s video",
            reason="empty_window",
            hint="check --start/--end against the video's duration (diffcap probe)",
        )
    return start, end, truncated


def final_target(info: VideoInfo, start: float, end: float) -> float:
    """Target whose answer is the last frame of the window (past the end: the last frame)."""
    if end >= info.duration:
        return info.duration + 1.0
    if info.fps and not info.variable_fps:
        # constant rate: frame k sits at k/fps, so the last one before `end` is known exactly
        k = math.ceil(end * info.fps - Fraction(1, 10**6)) - 1
        return max(float(k / info.fps), start)
    frame = 1 / info.fps_float if info.fps_float else FALLBACK_FRAME
    return max(end - 0.5 * frame, start)


#: Order of target kinds at equal times: a cut frame wins over a candidate on the same frame.
_RANK = {"cut": 0, "cand": 1, "probe": 2}


def check_candidates(start: float, end: float, interval: float) -> int:
    """The number of candidate times of the window; :class:`ConfigError` over
    :data:`MAX_CANDIDATES` (a too small ``--interval`` for this video's length)."""
    count = candidate_count(start, end, interval)
    if count > MAX_CANDIDATES:
        raise ConfigError(
            f"--interval {interval:g} s gives {count:,} candidate frames for {end - start:.0f} s "
            f"of video, over the limit of {MAX_CANDIDATES:,} per video",
            hint=f"raise keyframes.interval to at least {(end - start) / MAX_CANDIDATES:.3g} s, "
            "or process less of each video (keyframes.max_seconds)",
        )
    return count


def iter_targets(
    start: float,
    end: float,
    interval: float,
    final: float,
    probes: bool,
    cuts: Sequence[float] = (),
) -> Iterator[tuple[float, str]]:
    """(time, kind) in ascending time, generated lazily (memory does not grow with the
    number of candidates): "cand", "probe" (first interval), "cut" (first frame after a
    hard cut), then one "final"."""
    check_candidates(start, end, interval)
    streams: list[Iterable[tuple[float, str]]] = [
        ((t, "cand") for t in iter_candidate_times(start, end, interval))
    ]
    if probes:
        step = min(interval, end - start) / LEAD_PROBES
        streams.append([(start + k * step, "probe") for k in range(1, LEAD_PROBES)])
    streams.append(sorted((t, "cut") for t in cuts if start <= t < end))
    last = start
    for t, kind in heapq.merge(*streams, key=lambda x: (x[0], _RANK[x[1]])):
        last = t
        yield t, kind
    yield max(final, last), "final"


def plan_targets(
    start: float,
    end: float,
    interval: float,
    final: float,
    probes: bool,
    cuts: Sequence[float] = (),
) -> tuple[list[float], list[str]]:
    """:func:`iter_targets` as two lists, times and kinds (for small windows and tests)."""
    targets = list(iter_targets(start, end, interval, final, probes, cuts))
    return [t for t, _ in targets], [k for _, k in targets]
