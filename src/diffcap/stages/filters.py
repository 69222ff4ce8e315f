"""The duration filter (the paper kept videos of at most 2 minutes).

span = span_duration(info_duration=300.0, start=10.0, end=70.0)   # 60.0
duration_verdict(span, FilterConfig())    # None: kept; else (reason, message)
"""

from __future__ import annotations

from diffcap.config import FilterConfig
from diffcap.errors import DiffcapError


class BadSpan(DiffcapError):
    """A manifest span lies outside the video."""

    reason = "bad_span"


def span_duration(info_duration: float, start: float | None, end: float | None) -> float:
    """Seconds that will be captioned: ``end - start`` of a span, clipped to the video."""
    if start is None and end is None:
        return info_duration
    s = start or 0.0
    e = info_duration if end is None else min(end, info_duration) if info_duration else end
    if e <= s:
        raise BadSpan(
            f"span [{s:g}, {end if end is not None else 'end'}] is outside the "
            f"video ({info_duration:.3f} s long)",
            hint="fix the manifest's start/end columns",
        )
    return e - s


def duration_verdict(duration: float, cfg: FilterConfig) -> tuple[str, str] | None:
    """None when the duration passes, else (reason, message): ``too_long`` / ``too_short``."""
    if cfg.max_duration is not None and duration > cfg.max_duration:
        return "too_long", (
            f"duration {duration:.2f} s is over filter.max_duration {cfg.max_duration:g} s"
        )
    if cfg.min_duration is not None and duration < cfg.min_duration:
        return "too_short", (
            f"duration {duration:.2f} s is under filter.min_duration {cfg.min_duration:g} s"
        )
    return None
