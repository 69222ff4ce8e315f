"""Memory is bounded by the frames in flight, not by the video's length."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Callable, Iterator

from diffcap.timeline import Frame
from diffcap.video import open_video
from diffcap.video.synth import Scene

PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


def _measure(run: Callable[[], Iterator[Frame]]) -> tuple[int, int, int]:
    """(frames seen, Python heap peak, RSS growth after warm-up) while consuming ``run()``."""
    tracemalloc.start()
    try:
        n, base, top = 0, 0, 0
        for frame in run():
            assert frame.image.shape == (64, 64, 3)
            n += 1
            if n == 20:  # decoder pools, thread buffers and caches are warm by now
                base = _rss()
                tracemalloc.reset_peak()
            if n > 20:
                top = max(top, _rss())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return n, peak, max(0, top - base)


def test_ten_minute_video_keeps_memory_flat(video_factory) -> None:
    short = video_factory("one-minute", [Scene(30.0), Scene(30.0)], size=(64, 64), fps=5)
    long = video_factory("ten-minutes", [Scene(120.0)] * 5, size=(64, 64), fps=5)
    assert long.frame_count == 3000
    frame_bytes = 64 * 64 * 3

    def sample_every_second(path):
        def run():
            with open_video(path) as src:
                yield from src.frames_at([float(t) for t in range(600)])

        return run

    def every_frame(path):
        def run():
            with open_video(path) as src:
                yield from src.frames()

        return run

    n_short, peak_short, _ = _measure(every_frame(short.path))
    n_long, peak_long, rss_long = _measure(every_frame(long.path))
    assert (n_short, n_long) == (300, 3000)
    # Ten times the frames, the same peak: nothing accumulates per frame. (Decoded pixels
    # live in FFmpeg buffers, which tracemalloc cannot see: RSS covers those.)
    assert peak_long < peak_short + 10 * frame_bytes
    assert peak_long < 40 * frame_bytes  # a leak of Frame objects shows here (~600 B each)
    assert rss_long < 16 * 2**20

    n, peak, rss = _measure(sample_every_second(long.path))
    assert n == 600
    assert peak < 40 * frame_bytes and rss < 16 * 2**20
