"""CLI habits: `diffcap models`, global options after the subcommand, one-line usage
errors, and the exit codes every command shares."""

from __future__ import annotations

import json

import pytest

from support.cli import diffcap, run_cli


def test_models_reports_each_backend_and_what_auto_picks(monkeypatch, capsys):
    for var in ("OPENAI_API_KEY", "DIFFCAP_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    assert run_cli(["models", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["auto"] == "transformers"  # no key, no --api-base: in-process
    rows = {r["backend"]: r for r in report["backends"]}
    assert rows["openai"]["key"] is False and rows["openai"]["fix"]
    local = rows["transformers"]
    assert local["missing"] == [] and local["cached"] is False and local["offline"] is True
    assert any("--build-tiny" in f for f in local["fix"])
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert run_cli(["models", "--api-base", "http://127.0.0.1:1/v1"]) == 0
    text = capsys.readouterr().out
    assert "http://127.0.0.1:1/v1 unreachable" in text
    assert "--backend auto (the default) uses: openai" in text


def test_models_builds_the_tiny_model(tmp_path, capsys):
    out = tmp_path / "tiny"
    assert run_cli(["models", "--build-tiny", str(out)]) == 0
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    assert f"--backend transformers --model {out}" in capsys.readouterr().out


def test_global_options_work_after_the_subcommand(tmp_path, capsys):
    from diffcap.video.synth import Scene, write_video

    video = write_video(tmp_path / "v.mp4", [Scene(1.0)], size=(32, 32), fps=5)
    args = ["keyframes", str(video.path), "--out", str(tmp_path / "k"), "-q", "--no-progress"]
    assert run_cli(args) == 0
    assert run_cli(["keyframes", str(video.path), "--out", str(tmp_path / "k2"), "--debug"]) == 0


def test_usage_errors_are_one_line_and_the_usage_line(capsys):
    assert run_cli(["run", "x.mp4", "--out", "o", "--bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("error: No such option '--bogus'")
    assert err[1].startswith("Usage: diffcap run") and len(err) == 2


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["caption", "v.mp4", "--out", "c.jsonl", "--backend", "transformer"], 2),  # typo
        (["run", "v.mp4", "--out", "r", "--set", "model.concurrency=abc"], 2),
        (["status", "."], 2),  # not a run directory
        (["export", ".", "--format", "jsonl", "--out", "x.jsonl"], 2),
        (["recaption", "a short prompt"], 3),  # no usable model here
        (["caption", "v.mp4", "--out", "c.jsonl", "--api-base", "http://127.0.0.1:1/v1"], 3),
        (["nope"], 2),
    ],
)
def test_exit_codes_are_shared_by_every_command(tmp_path, monkeypatch, capsys, args, code):
    for var in ("OPENAI_API_KEY", "DIFFCAP_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    assert diffcap(*args) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "Traceback" not in err, err


def test_recaption_and_summarize_check_the_model_before_any_request(tmp_path, capsys):
    """Offline with no account: the text commands fail in seconds too, not after minutes of
    hub retries."""
    import time

    started = time.monotonic()
    assert diffcap("recaption", "a corgi on a beach") == 3
    assert time.monotonic() - started < 10
    assert "offline routes" in capsys.readouterr().err


def test_a_hub_embedder_that_is_not_cached_fails_before_decoding(tmp_path, capsys):
    from diffcap.video.synth import Scene, write_video

    video = write_video(tmp_path / "v.mp4", [Scene(1.0)], size=(32, 32), fps=5)
    out = tmp_path / "k"
    assert diffcap("keyframes", str(video.path), "--out", str(out), "--embedder", "clip") == 3
    assert "not in the Hugging Face cache" in capsys.readouterr().err
    assert not (out / "keyframes").exists()
