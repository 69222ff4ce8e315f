"""The run directory's life (issue 22, item 7): the saved config is written only after the
pre-flight passed and a rerun without flags reuses it; a failed first pre-flight leaves no
run directory; a damaged or empty ``run.sqlite`` is a clear error, never a bug or a new run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from diffcap.video.synth import Scene, write_video
from support.servers import FaultServer, free_port


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rundir_videos")
    for i in range(2):
        write_video(
            root / f"c{i}.mp4", [Scene(1.0, hue=0.3 * i), Scene(1.0)], size=(64, 48), fps=10
        )
    return root


def diffcap(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("DIFFCAP_API_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "diffcap", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def model_flags(base: str) -> list[str]:
    return ["--backend", "openai", "--api-base", base, "--model", "tiny", "--api-key", "k"]


COMMON = ["--embedder", "weightless", "--workers", "1", "--no-progress"]


def test_a_failed_first_preflight_leaves_no_run_directory(videos, tmp_path):
    closed = f"http://127.0.0.1:{free_port()}/v1"
    caps = tmp_path / "out" / "caps.jsonl"
    done = diffcap("caption", str(videos / "c0.mp4"), "--out", str(caps), *model_flags(closed))
    assert done.returncode == 3, done.stderr  # no usable model
    assert not (tmp_path / "out" / "caps.run").exists()
    run_dir = tmp_path / "run"
    done = diffcap("run", str(videos), "--out", str(run_dir), *model_flags(closed), *COMMON)
    assert done.returncode == 3 and not run_dir.exists(), done.stderr
    # an empty folder made beforehand is left, empty
    (tmp_path / "empty").mkdir()
    done = diffcap("run", str(videos), "--out", str(tmp_path / "empty"), *model_flags(closed))
    assert done.returncode == 3 and list((tmp_path / "empty").iterdir()) == []


def test_a_rerun_reuses_the_saved_config_and_a_failed_one_keeps_it(videos, tmp_path):
    run_dir = tmp_path / "run"
    with FaultServer() as srv:
        flags = [*model_flags(srv.base_url), "--interval", "0.7", "--max-tokens", "33"]
        first = diffcap("run", str(videos), "--out", str(run_dir), *flags, *COMMON)
        assert first.returncode == 0, first.stderr
        saved = (run_dir / "config.yaml").read_text()
        assert "interval: 0.7" in saved and "max_tokens: 33" in saved
        sent = len(srv.requests)
        # as docs/runs.md shows it: no inputs, no model flags
        again = diffcap("run", "--out", str(run_dir), "--retry-failed", "--no-progress")
        assert again.returncode == 0, again.stderr
        assert "config differs" not in again.stderr
        assert (run_dir / "config.yaml").read_text() == saved
        assert len(srv.requests) == sent  # nothing new to ask: every answer is cached
        # flags still apply on top of the saved config
        more = diffcap("run", "--out", str(run_dir), "--max-tokens", "34", "--no-progress")
        assert more.returncode == 0, more.stderr
        assert "max_tokens: 34" in (run_dir / "config.yaml").read_text()
        assert "interval: 0.7" in (run_dir / "config.yaml").read_text()
    kept = (run_dir / "config.yaml").read_text()
    # the server is gone: the rerun's pre-flight fails and the saved config stays as it was
    failed = diffcap("run", "--out", str(run_dir), "--retry-failed", "--no-progress")
    assert failed.returncode == 3, failed.stderr
    assert (run_dir / "config.yaml").read_text() == kept


@pytest.fixture
def keyframes_run(videos, tmp_path) -> Path:
    run_dir = tmp_path / "kf"
    done = diffcap("keyframes", str(videos), "--out", str(run_dir), *COMMON)
    assert done.returncode == 0, done.stderr
    return run_dir


def test_a_damaged_run_database_is_a_clear_error(keyframes_run, videos):
    db = keyframes_run / "run.sqlite"
    data = bytearray(db.read_bytes())
    data[100:] = b"\x5a" * (len(data) - 100)  # the header survives, the pages do not
    db.write_bytes(bytes(data))
    for args in (
        ["keyframes", str(videos), "--out", str(keyframes_run), *COMMON],
        ["status", str(keyframes_run)],
    ):
        done = diffcap(*args)
        assert done.returncode == 2, done.stderr  # not 70 (a bug)
        assert "run.sqlite: not a" in done.stderr and "diffcap run database" in done.stderr
        assert "internal error" not in done.stderr and "Traceback" not in done.stderr


def test_an_empty_run_database_is_not_a_new_run(keyframes_run, videos):
    db = keyframes_run / "run.sqlite"
    db.write_bytes(b"")
    done = diffcap("keyframes", str(videos), "--out", str(keyframes_run), *COMMON)
    assert done.returncode == 2, done.stderr
    assert "empty (0 bytes)" in done.stderr
    assert db.stat().st_size == 0  # left as found: nothing was started over it
