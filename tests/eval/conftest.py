"""Shared fixtures of the eval tests: the loopback server and tiny videos."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffcap.video.synth import Scene, write_video
from support.postgres import pg_server, pg_url  # noqa: F401
from support.servers import _fault_server_session, fault_server  # noqa: F401


@pytest.fixture(scope="session")
def eval_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six 1-s 48x48 clips named v1.mp4 .. v6.mp4 (different colours)."""
    root = tmp_path_factory.mktemp("eval_videos")
    for i in range(1, 7):
        write_video(root / f"v{i}.mp4", [Scene(1.0, hue=i / 7)], size=(48, 48), fps=8)
    return root
