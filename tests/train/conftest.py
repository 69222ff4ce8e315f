"""Fixtures for the training tests: the tiny LLaVA and one teacher run (a real `diffcap run`
against the loopback teacher), shared by the session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from support.fault_server import FaultServer, Received
from support.teacher import teacher_reply, teacher_run, write_teacher_videos
from support.tiny_llava import tiny_llava_dir  # noqa: F401

pytest.importorskip("trl")
pytest.importorskip("peft")


@dataclass
class Teacher:
    videos: Path
    run_dir: Path
    requests: list[Received]  # what the teacher received, in order


@pytest.fixture(scope="session")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Teacher:
    root = tmp_path_factory.mktemp("teacher")
    videos = write_teacher_videos(root / "videos")
    with FaultServer(reply=teacher_reply) as srv:
        run_dir = teacher_run(videos, root / "run", srv)
        received = list(srv.requests)
    return Teacher(videos, run_dir, received)
