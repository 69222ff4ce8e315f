"""One exit-code rule (docs/runs.md, "Exit codes"): 0 only when every video of the run is
done or filtered by a filter the user set. Real CLI, real videos, a real loopback server."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from diffcap.video.synth import Scene, write_video
from support import servers
from support.cli import diffcap
from support.servers import Fault

_fault_server_session = servers._fault_server_session
fault_server = servers.fault_server

ROOT = Path(__file__).resolve().parents[2]


def _model_flags(srv) -> list[str]:
    return [
        "--backend", "openai", "--api-base", srv.base_url, "--model", "tiny",
        "--api-key", "test", "--workers", "1", "--model-max-retries", "0", "--no-progress",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("exit_rule") / "clip.mp4"
    write_video(path, [Scene(1.0, hue=0.1), Scene(1.0, hue=0.6)], size=(64, 64), fps=10)
    return path


@pytest.mark.parametrize("status", [401, 404])
def test_a_wrong_key_or_model_that_fails_every_video_exits_non_zero(
    fault_server, clip, tmp_path, status
):
    fault_server.fail(*[Fault("status", status=status)] * 50)
    code = diffcap("run", str(clip), "--out", str(tmp_path / "r"), *_model_flags(fault_server))
    assert code == 1


def test_run_with_nothing_to_do_exits_non_zero(fault_server, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    flags = _model_flags(fault_server)
    assert diffcap("run", str(empty), "--out", str(tmp_path / "r1"), *flags) == 1
    missing = str(tmp_path / "nope.mp4")
    assert diffcap("run", missing, "--out", str(tmp_path / "r2"), *flags) == 1
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    assert diffcap("run", str(broken), "--out", str(tmp_path / "r3"), *flags) == 1


def test_run_where_every_video_is_done_or_filtered_exits_zero(fault_server, clip, tmp_path):
    flags = _model_flags(fault_server)
    assert diffcap("run", str(clip), "--out", str(tmp_path / "ok"), *flags) == 0
    # filtered by a filter the user set: still 0
    too_short = ["--set", "filter.min_duration=30"]
    assert diffcap("run", str(clip), "--out", str(tmp_path / "f"), *flags, *too_short) == 0


def _fake_venv(tmp_path: Path, caption_rc: int, writes: bool) -> Path:
    """A venv whose python is a no-op (setup steps) and whose `diffcap caption` exits with
    ``caption_rc``, writing a record only when ``writes``: the Makefile's logic is tested,
    not the model."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    record = 'echo \'{"video_id": "sample"}\' > "$4"' if writes else ': > "$4"'
    scripts = {
        "python": "#!/bin/sh\nexit 0\n",
        "diffcap": "#!/bin/sh\n"
        'if [ "$1" = caption ]; then mkdir -p "$(dirname "$4")"; '
        f"{record}; exit {caption_rc}; fi\nexit 0\n",
    }
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return tmp_path / "venv"


@pytest.mark.parametrize(
    ("caption_rc", "writes", "ok"),
    [(0, True, True), (3, False, False), (0, False, False), (1, False, False)],
)
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_fails_when_no_caption_was_written(tmp_path, caption_rc, writes, ok):
    venv = _fake_venv(tmp_path, caption_rc, writes)
    work = tmp_path / "work"
    work.mkdir()
    (work / "Makefile").write_text((ROOT / "Makefile").read_text(encoding="utf-8"))
    proc = subprocess.run(
        ["make", "--no-print-directory", "demo", f"VENV={venv}"],
        cwd=work, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (proc.returncode == 0) is ok, proc.stdout + proc.stderr
    if not ok:
        assert "no caption" in proc.stdout, proc.stdout
