"""Advice that works: every hint these errors give is run here, as printed, and must work
(where it can offline). Real CLI, real subprocesses for what PATH decides."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
import openai
import pytest

from diffcap.models.retry import classify_exception
from diffcap.video.synth import Scene, write_video
from support.cli import diffcap

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def clip(tmp_path) -> Path:
    return write_video(
        tmp_path / "v.mp4", [Scene(1.0), Scene(1.0, hue=0.6)], size=(32, 32), fps=5
    ).path


def _quoted(err: str) -> list[str]:
    return re.findall(r"`([^`]+)`", err)


def _env(path_without_venv: bool = False) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(SRC)}
    for var in ("OPENAI_API_KEY", "DIFFCAP_API_KEY", "OPENAI_BASE_URL"):
        env.pop(var, None)
    if path_without_venv:  # as after `make demo`: .venv/bin is not on PATH
        venv_bin = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin)
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_clip_offline_error_gives_embedder_advice_that_runs(clip, tmp_path, capsys):
    assert diffcap("keyframes", str(clip), "--out", str(tmp_path / "k"), "--embedder", "clip") == 3
    err = capsys.readouterr().err
    assert "--backend" not in err and "--build-tiny" not in err and "huggingface-cli" not in err
    assert "--embedder weightless" in err
    hf = next(q for q in _quoted(err) if " download " in q)
    # The hint was printed by a CLI running here: it is run from the same folder.
    shown = [*shlex.split(hf.split(" download ")[0]), "download", "--help"]
    assert _run(shown, Path.cwd(), _env()).returncode == 0
    cmd = ["keyframes", str(clip), "--out", str(tmp_path / "k2"), "--embedder", "weightless"]
    assert diffcap(*cmd) == 0


def test_docs_and_hints_name_hf_download_not_huggingface_cli():
    root = SRC.parent
    texts = [p.read_text(encoding="utf-8") for p in (root / "docs").glob("*.md")]
    texts += [p.read_text(encoding="utf-8") for p in (root / "src").rglob("*.py")]
    assert not any("huggingface-cli" in t for t in texts)


def test_a_mistyped_local_model_path_is_no_such_folder(clip, tmp_path, monkeypatch, capsys):
    (tmp_path / "models" / "tiny-llava").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    args = ["caption", str(clip), "--out", "c.jsonl", "--backend", "transformers"]
    assert diffcap(*args, "--model", "models/tiny-llavaa") == 3
    err = capsys.readouterr().err
    assert "no such folder" in err and "Hugging Face cache" not in err
    keyframes = ["keyframes", str(clip), "--out", "k", "--embedder", "clip:models/clipp"]
    assert diffcap(*keyframes) == 3
    assert "no such folder" in capsys.readouterr().err


def test_hints_name_commands_that_run_when_the_venv_is_not_on_path(clip, tmp_path):
    """Offline, no key, .venv/bin not on PATH: the offline routes' commands run as printed
    (build the tiny model, then caption with it)."""
    env = _env(path_without_venv=True)
    python = [sys.executable, "-m", "diffcap", "-q"]
    first = _run([*python, "caption", str(clip), "--out", "c.jsonl"], tmp_path, env)
    assert first.returncode == 3, first.stderr
    build = next(q for q in _quoted(first.stderr) if "--build-tiny" in q)
    exe = build.split(" models ")[0]
    assert exe != "diffcap" and Path(exe).is_file()  # not on PATH: named by its path
    built = _run([*shlex.split(build.replace("DIR", "tiny")), "-q"], tmp_path, env)
    assert built.returncode == 0, built.stderr
    args = ["caption", str(clip), "--out", "c.jsonl", "--backend", "transformers"]
    done = _run([*python, *args, "--model", "tiny", "--no-progress"], tmp_path, env)
    assert done.returncode == 0, done.stderr[-2000:]
    look = next(line for line in done.stdout.splitlines() if line.startswith("look at them:"))
    assert look.split(": ", 1)[1].startswith(exe)


def test_view_of_a_file_that_is_not_records_is_one_error(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# a readme\n" + "not json\n" * 1330)
    proc = _run([sys.executable, "-m", "diffcap", "view", str(readme)], tmp_path, _env())
    assert proc.returncode == 2
    assert (
        len(proc.stderr.strip().splitlines()) == 1 and "not a diffcap records file" in proc.stderr
    )


def test_a_newline_in_a_file_name_cannot_forge_status_lines(tmp_path, capsys):
    videos = tmp_path / "in"
    videos.mkdir()
    (videos / "evil\n  forged [prepare-ok] x0: all fine\nx.mp4").write_bytes(b"not a video")
    out = tmp_path / "run"
    code = diffcap("keyframes", str(videos), "--out", str(out))
    assert code == 1
    status = next(q for q in _quoted(capsys.readouterr().out) if " status " in q)
    ran = _run(shlex.split(status), Path.cwd(), _env())  # the hint, run as printed, from here
    assert ran.returncode == 0 and "failures (1)" in ran.stdout, ran.stderr
    assert diffcap("status", str(out)) == 0
    text = capsys.readouterr().out
    assert not any(line.startswith("  forged") for line in text.splitlines())
    assert "\\n  forged" in text


def test_an_empty_connection_error_still_says_what_failed():
    request = httpx.Request("POST", "http://127.0.0.1:1/v1/chat/completions")
    exc = openai.APIConnectionError(request=request)
    exc.__cause__ = httpx.WriteError("")  # what a full disk or a reset gave: no message
    message = str(classify_exception(exc))
    assert not re.search(r"connection failed: *($|;)", message), message
    assert "WriteError" in message
    exc.__cause__ = OSError(28, "")  # ENOSPC with no text
    assert "No space left on device" in str(classify_exception(exc))
