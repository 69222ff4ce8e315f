"""A loopback "teacher" for distillation tests: a FaultServer that answers every captioning
prompt of the diffcap preset with a fixed short caption per step, and a `diffcap run` with it.

    with FaultServer(reply=teacher_reply) as srv:
        run_dir = teacher_run(videos_dir, tmp / "run", srv)   # a real run directory

Targets are short so a tiny model can learn them in a CPU-feasible number of steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from diffcap.video.synth import Scene, write_video
from support.cli import diffcap
from support.fault_server import FaultServer, _text_and_images

#: Short prompt templates (``--template NAME=PATH`` overrides of the diffcap preset): short
#: sequences keep training on 2 shared CPU cores to seconds. Real runs use the presets.
TEMPLATES = {
    "first_frame": "First frame, at {time:.1f} s. Describe it.",
    "differential": "Frames at {prev_time:.1f} s and {time:.1f} s. Before: {previous}\n"
    "What changed?",
    "summary": "Captions:\n{timeline}\nSummarize.",
    "fast": "A grid of {num_frames} frames. Describe the video.",
}

#: Prompt marker -> the teacher's caption for that step.
TARGETS = {
    "Describe it.": "A red ball on green grass.",
    "What changed?": "The ball rolls to the left.",
    "Summarize.": "A red ball rolls left on grass.",
    "Describe the video.": "A red ball rolls left on grass.",
}


def teacher_reply(body: Any) -> str:
    text, _ = _text_and_images(body)
    for marker, answer in TARGETS.items():
        if marker in text:
            return answer
    return "Something else."


def write_teacher_videos(root: Path, n: int = 3) -> Path:
    """``n`` short two-scene videos (two keyframes each with the weightless embedder)."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_video(
            root / f"clip{i}.mp4",
            [Scene(1.0, hue=i / n), Scene(1.0, hue=(i / n + 0.5) % 1)],
            size=(64, 48),
            fps=8,
        )
    return root


def write_templates(folder: Path) -> list[str]:
    """The :data:`TEMPLATES` as files; -> ``--template NAME=PATH`` arguments."""
    folder.mkdir(parents=True, exist_ok=True)
    args = []
    for name, body in TEMPLATES.items():
        path = folder / f"{name}.txt"
        path.write_text(f"---\nid: test/{name}\nversion: 1\n---\n{body}\n", encoding="utf-8")
        args += ["--template", f"{name}={path}"]
    return args


def teacher_run(videos: Path, run_dir: Path, srv: FaultServer, *extra: str) -> Path:
    """``diffcap run VIDEOS --out RUN_DIR`` with the teacher and the short templates (exit
    status checked)."""
    templates = write_templates(run_dir.parent / "templates")
    rc = diffcap(
        "run", str(videos), "--out", str(run_dir), "--backend", "openai",
        "--api-base", srv.base_url, "--model", "teacher", "--api-key", "test",
        "--embedder", "weightless", "--workers", "1", "--no-dedup", "--no-progress",
        *templates, *extra,
    )  # fmt: skip
    assert rc == 0, f"diffcap run with the teacher exited {rc}"
    return run_dir
