"""`diffcap train` killed with SIGKILL after a checkpoint, then rerun with --resume, ends
with the same metrics as an uninterrupted run with the same seed; without --resume it
refuses to overwrite the checkpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from support.cli import diffcap

STEPS, SAVE = 12, 4


def _args(teacher, model, out) -> list[str]:
    return [
        "train", str(teacher.run_dir), "--model", str(model), "--out", str(out),
        "--method", "lora", "--max-steps", str(STEPS), "--save-steps", str(SAVE),
        "--lr", "5e-3", "--batch-size", "2", "--eval-fraction", "0.34", "--seed", "7",
        "--logging-steps", "2",
    ]  # fmt: skip


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def _metrics(out) -> dict:
    return json.loads((out / "train_metrics.json").read_text())


FIGURES = ("initial_train_loss", "initial_eval_loss", "final_train_loss", "final_eval_loss")


def test_sigkill_then_resume_matches_an_uninterrupted_run(teacher, tiny_llava_dir, tmp_path):
    whole = tmp_path / "whole"
    assert diffcap(*_args(teacher, tiny_llava_dir, whole)) == 0
    want = _metrics(whole)
    assert want["steps"] == STEPS and want["eval_samples"] > 0 and want["train_samples"] > 0
    assert want["final_eval_loss"] < want["initial_eval_loss"]
    assert want["final_train_loss"] < want["initial_train_loss"]

    cut = tmp_path / "cut"
    cmd = [sys.executable, "-m", "diffcap", "-q", *_args(teacher, tiny_llava_dir, cut)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state = cut / "checkpoints" / f"checkpoint-{SAVE}" / "trainer_state.json"
    deadline = time.monotonic() + 240
    while not state.is_file() and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert not (cut / "train_metrics.json").exists()  # it really died mid-run

    # Without --resume the checkpoints are not overwritten: a one-line usage error.
    rerun = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 2 and "already holds checkpoints" in rerun.stderr
    assert "--resume" in rerun.stderr and len(rerun.stderr.strip().splitlines()) == 1

    resumed = subprocess.run(
        [*cmd, "--resume"], env=_env(), capture_output=True, text=True, timeout=240
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    got = _metrics(cut)
    assert got["resumed_from"] is not None and got["resumed_from"].endswith(
        tuple(f"checkpoint-{s}" for s in range(SAVE, STEPS, SAVE))
    )
    assert got["steps"] == want["steps"]
    for key in FIGURES:
        assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-6), key


def test_a_full_disk_stops_with_one_line_and_resume_continues(teacher, tiny_llava_dir, tmp_path,
                                                              capsys):  # fmt: skip
    """Room for one checkpoint, not two: exit 4, one line naming --resume; with space
    again, --resume finishes from the complete checkpoint (the cut one is skipped)."""
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2200k", "tmpfs", str(small)],
                      capture_output=True).returncode != 0:  # fmt: skip
        pytest.skip("mount is not permitted here (needs root)")
    out = small / "o"
    args = [
        "train", str(teacher.run_dir), "--model", str(tiny_llava_dir), "--out", str(out),
        "--method", "full", "--max-steps", "4", "--save-steps", "2", "--eval-fraction", "0",
    ]  # fmt: skip
    try:
        capsys.readouterr()
        assert diffcap(*args) == 4
        err = capsys.readouterr().err.strip()
        assert "No space left on device" in err and "--resume" in err, err
        assert len(err.splitlines()) == 1
        moved = tmp_path / "o"
        subprocess.run(["cp", "-a", str(out), str(moved)], check=True)
    finally:
        subprocess.run(["umount", str(small)], check=False)
    args[args.index(str(out))] = str(moved)
    assert diffcap(*args, "--resume") == 0
    m = _metrics(moved)
    assert m["resumed_from"].endswith(("checkpoint-2", "checkpoint-4"))
    assert m["steps"] == 4 and m["final_train_loss"] < m["initial_train_loss"]
