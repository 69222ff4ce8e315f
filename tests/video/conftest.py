"""Fixtures for the video tests (the session-wide synthetic video cache)."""

from support.videos import video_factory  # noqa: F401  (pytest fixture)
