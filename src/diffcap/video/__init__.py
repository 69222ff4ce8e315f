"""Reading videos: exact PTS timestamps, upright RGB frames, bounded memory.

    from diffcap.video import open_video, probe

    probe("clip.mp4").to_json()          # container, codec, size, fps, frame count, ...
    with open_video("clip.mp4") as src:
        for frame in src.frames(every=2.0):     # first frame at/after 0, 2, 4, ... s
            frame.time, frame.image.shape

Bad inputs raise :class:`diffcap.errors.VideoError` subclasses with one-line messages.
"""

from __future__ import annotations

from pathlib import Path

from diffcap.timeline import VideoInfo
from diffcap.video.base import VideoSource
from diffcap.video.pyav import PyAVSource

__all__ = ["PyAVSource", "VideoSource", "open_video", "probe"]


def open_video(path: str | Path) -> VideoSource:
    """Open ``path`` for reading (a context manager). Raises a typed ``VideoError``."""
    return PyAVSource(path)


def probe(path: str | Path, *, exact_count: bool = False) -> VideoInfo:
    """Describe the video at ``path``; ``exact_count`` decodes it to count frames when the
    container does not store the count."""
    with PyAVSource(path) as src:
        return src.info(exact_count=exact_count)
