from __future__ import annotations

from pathlib import Path

import pytest

from support.servers import _fault_server_session, fault_server  # noqa: F401


@pytest.fixture(scope="session")
def scenes_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 s, 160x96, 10 fps, 20 distinct shots (a keyframe every 2 s or so)."""
    from diffcap.video.synth import sample_video

    path = tmp_path_factory.mktemp("live_src") / "scenes.mp4"
    sample_video(path, duration=40, size=(160, 96), fps=10, scenes=20)
    return path
