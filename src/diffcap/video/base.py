"""The video source interface. Implementations: :mod:`diffcap.video.pyav` (the default).

from diffcap.video import open_video
with open_video("clip.mp4") as src:
    info = src.info()
    for frame in src.frames(start=0.0, end=None, every=2.0):
        frame.image, frame.time       # upright RGB uint8, true PTS seconds
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator

from diffcap.timeline import Frame, VideoInfo


class VideoSource(ABC):
    """Reads one video. Memory is bounded by the frames in flight, never by video length."""

    @abstractmethod
    def info(self, *, exact_count: bool = False) -> VideoInfo:
        """Probe facts (cheap; no full decode unless the container hides the duration)."""

    @abstractmethod
    def frames(
        self, start: float = 0.0, end: float | None = None, every: float | None = None
    ) -> Iterator[Frame]:
        """Decoded frames in [start, end). With ``every``, the first frame at or after each
        target time start, start+every, ...; without it, every frame."""

    @abstractmethod
    def frames_at(self, times: Iterable[float]) -> Iterator[Frame]:
        """For each target time (ascending; any iterable, consumed lazily), the first frame
        at or after it (the last frame when past the end). Sequential decoding when targets
        are near, seeks when far."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the file."""

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
