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


@dataclass
class Trained:
    out: Path
    metrics: dict


@pytest.fixture(scope="session")
def lora_sft(teacher: Teacher, tiny_llava_dir: Path, tmp_path_factory) -> Trained:  # noqa: F811
    """A short LoRA SFT on the teacher run, adapter merged too (OUT and OUT/merged)."""
    from diffcap.train.model import LoraSettings
    from diffcap.train.sft import TrainOptions, train_sft

    out = tmp_path_factory.mktemp("lora") / "sft"
    result = train_sft(
        TrainOptions(
            data=(str(teacher.run_dir),), model=str(tiny_llava_dir), out=out, method="lora",
            max_steps=8, lr=1e-2, batch_size=4, eval_fraction=0, merge=True, save_steps=100,
            lora=LoraSettings(r=8, alpha=16, dropout=0.0), progress=False,
        )
    )  # fmt: skip
    return Trained(out, result.metrics)
