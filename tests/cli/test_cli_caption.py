"""`diffcap caption`, `summarize`, `recaption` through the real CLI entry point, over real
HTTP (the recording fault server, `transformers serve` with the tiny LLaVA)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import support.servers as servers
import support.tiny_llava as tiny
from diffcap.cli.main import main
from diffcap.video.synth import Scene, write_video

# The shared server fixtures, made visible to this module.
_fault_server_session = servers._fault_server_session
fault_server = servers.fault_server
tiny_llava_server = servers.tiny_llava_server
tiny_llava_dir = tiny.tiny_llava_dir


def diffcap(*args: str) -> int:
    try:
        main(["-q", *args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-videos") / "clip.mp4"
    write_video(
        path,
        [
            Scene(2.0, layout="solid", hue=0.6),
            Scene(2.0, layout="checker"),
            Scene(2.0, layout="rings", hue=0.2),
        ],
        size=(96, 64),
        fps=10,
    )
    return path


@pytest.fixture
def no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "DIFFCAP_API_KEY"):
        monkeypatch.delenv(var, raising=False)


def records(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_caption_over_transformers_serve(tiny_llava_server, video, tmp_path, capsys):
    out = tmp_path / "out" / "captions.jsonl"
    code = diffcap(
        "caption",
        str(video),
        "--out",
        str(out),
        "--api-base",
        tiny_llava_server.base_url,
        "--model",
        tiny_llava_server.model,
        "--max-tokens",
        "5",
        "--interval",
        "1",
        "--prompt-preset",
        "sharecaptioner",
    )
    assert code == 0
    (rec,) = records(out)
    assert rec["video_id"] == "clip" and rec["mode"] == "slide"
    assert rec["captions"][-1]["idx"] == "-1"
    assert rec["provenance"]["prompt_preset"] == "sharecaptioner"
    assert rec["provenance"]["options"]["max_tokens"] == 5  # the flag beat the preset's 2048
    assert rec["provenance"]["options"]["num_beams"] == 3  # the preset's default
    assert (out.parent / "captions.keyframes" / "clip" / "keyframes.json").is_file()
    assert not (out.parent / "captions.failures.jsonl").exists()
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("1/1 videos captioned") and "0 failed" in line
    assert f"{rec['usage']['requests']} requests" in line


def test_caption_fast_and_failures(fault_server, video, tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    out = tmp_path / "captions.jsonl"
    code = diffcap(
        "caption",
        str(bad),
        str(video),
        "--out",
        str(out),
        "--mode",
        "fast",
        "--api-base",
        fault_server.base_url,
        "--model",
        "m",
        "--fast-layout",
        "strip",
    )
    assert code == 1
    (rec,) = records(out)
    assert rec["mode"] == "fast" and len(fault_server.requests) == 1
    (failure,) = records(tmp_path / "captions.failures.jsonl")
    assert failure["video_id"] == "bad" and failure["stage"] == "keyframes"
    captured = capsys.readouterr()
    assert "1 failed" in captured.out and "captions.failures.jsonl" in captured.err


def test_caption_without_model_extracts_keyframes_and_exits_3(
    no_openai_env, video, tmp_path, capsys
):
    out = tmp_path / "captions.jsonl"
    code = diffcap("caption", str(video), "--out", str(out), "--interval", "1")
    assert code == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--api-base" in err and "--backend transformers --model" in err
    # both keys the caption command reads
    assert "DIFFCAP_API_KEY" in err and "OPENAI_API_KEY" in err and "--api-key" in err
    kdir = tmp_path / "captions.keyframes" / "clip"
    kf = json.loads((kdir / "keyframes.json").read_text())
    assert len(kf["keyframes"]) >= 3
    assert all((kdir / k["file"]).is_file() for k in kf["keyframes"])
    assert out.read_text() == ""


def test_caption_transformers_model_missing_exits_3(video, tmp_path, capsys):
    out = tmp_path / "captions.jsonl"
    code = diffcap(
        "caption",
        str(video),
        "--out",
        str(out),
        "--backend",
        "transformers",
        "--model",
        str(tmp_path / "no-such-model"),
    )
    assert code == 3
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert (tmp_path / "captions.keyframes" / "clip" / "keyframes.json").is_file()


def test_caption_window_summary_is_told_the_window(fault_server, video, tmp_path):
    out = tmp_path / "captions.jsonl"
    args = ("--interval", "1", "--start", "1", "--end", "4")
    code = diffcap(
        "caption", str(video), "--out", str(out), *args, "--api-base", fault_server.base_url
    )
    assert code == 0
    (rec,) = records(out)
    assert (rec["captions"][-1]["start"], rec["captions"][-1]["end"]) == (1.0, 4.0)
    (req,) = [r for r in fault_server.requests if r.prompt.startswith("Below are")]
    assert "of the clip from 1.0 s to 4.0 s of a video, 3.0 s long." in req.prompt
    assert "6.0 s" not in req.prompt


@pytest.fixture
def captioned(fault_server, video, tmp_path) -> Path:
    out = tmp_path / "captions.jsonl"
    assert (
        diffcap(
            "caption",
            str(video),
            "--out",
            str(out),
            "--interval",
            "1",
            "--api-base",
            fault_server.base_url,
            "--model",
            "m",
        )
        == 0
    )
    fault_server.reset()
    return out


def test_summarize_decodes_no_frames(captioned, fault_server, tmp_path, capsys):
    shutil.rmtree(tmp_path / "captions.keyframes")  # no image, no video needed
    (rec,) = records(captioned)
    times = [c["time"] for c in rec["captions"][:-1]]
    capsys.readouterr()
    code = diffcap(
        "summarize",
        str(captioned),
        "--video-id",
        "clip",
        "--start",
        str(times[1]),
        "--end",
        str(times[2]),
        "--api-base",
        fault_server.base_url,
        "--model",
        "m",
    )
    assert code == 0
    (req,) = fault_server.requests
    assert req.images == 0
    for c in rec["captions"][1:3]:
        assert c["content"] in req.prompt
    assert rec["captions"][0]["content"] not in req.prompt
    assert capsys.readouterr().out.strip() == "ok: " + " ".join(req.prompt.split()[:8])

    code = diffcap(
        "summarize",
        str(captioned),
        "--start",
        "0",
        "--end",
        str(times[1]),
        "--json",
        "--api-base",
        fault_server.base_url,
        "--model",
        "m",
    )
    assert code == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["mode"] == "clip_summary" and obj["video_id"] == "clip"
    assert [c["idx"] for c in obj["captions"]] == ["0", "1", "-1"]
    assert obj["captions"][-1]["start"] == 0.0 and obj["usage"]["requests"] == 1


@pytest.mark.allow_error_logs
def test_summarize_empty_range_fails_before_any_request(captioned, fault_server, capsys):
    code = diffcap(
        "summarize",
        str(captioned),
        "--start",
        "0.5",
        "--end",
        "0.9",
        "--api-base",
        fault_server.base_url,
        "--model",
        "m",
    )
    assert code == 1
    assert "no caption between 0.5 s and 0.9 s" in capsys.readouterr().err
    assert fault_server.requests == []


def test_summarize_unknown_video_id(captioned, capsys):
    assert (
        diffcap("summarize", str(captioned), "--video-id", "nope", "--start", "0", "--end", "9")
        == 1
    )
    assert "known ids: clip" in capsys.readouterr().err


def test_recaption_prompts_and_file(fault_server, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("rain on a window\n\n  a city at night  \n")
    code = diffcap(
        "recaption",
        "a corgi on a beach",
        "--file",
        str(prompts),
        "--api-base",
        fault_server.base_url,
        "--model",
        "m",
        "--concurrency",
        "2",
    )
    assert code == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["prompt"] for r in rows] == [
        "a corgi on a beach",
        "rain on a window",
        "a city at night",
    ]
    assert len(fault_server.requests) == 3
    for row in rows:
        (req,) = [r for r in fault_server.requests if r.prompt.endswith(row["prompt"])]
        assert row["caption"] == "ok: " + " ".join(req.prompt.split()[:8])
        prov = row["provenance"]  # what produced this line
        assert prov["template"] == "diffcap/recaption@1" and prov["prompt_preset"] == "diffcap"
        assert (prov["backend"], prov["model"]) == ("openai", "m")
        assert prov["diffcap_version"]


def test_recaption_provenance_follows_the_preset(fault_server, capsys):
    args = ("--api-base", fault_server.base_url, "--model", "m2", "--prompt-preset")
    assert diffcap("recaption", "a dog runs", *args, "sharecaptioner") == 0
    (row,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert row["provenance"]["template"] == "sharecaptioner/recaption@1"
    assert row["provenance"]["model"] == "m2"
    (req,) = fault_server.requests
    assert req.prompt.startswith("Translate this brief generation prompt")


@pytest.mark.allow_error_logs
def test_recaption_reports_failed_prompt(fault_server, capsys):
    fault_server.fail("status", status=400, when="bad prompt")
    code = diffcap(
        "recaption",
        "good prompt",
        "bad prompt",
        "--api-base",
        fault_server.base_url,
        "--model",
        "m",
    )
    assert code == 1
    good, bad = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert "caption" in good and bad["reason"] == "request_failed" and "400" in bad["error"]
    assert good["provenance"] == bad["provenance"]
    assert bad["provenance"]["template"] == "diffcap/recaption@1"


def test_recaption_over_transformers_serve(tiny_llava_server, capsys):
    code = diffcap(
        "recaption",
        "a dog runs",
        "--api-base",
        tiny_llava_server.base_url,
        "--model",
        tiny_llava_server.model,
        "--max-tokens",
        "4",
    )
    assert code == 0
    (row,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert row["prompt"] == "a dog runs" and row["caption"]


def test_recaption_without_model_exits_3(no_openai_env, capsys):
    assert diffcap("recaption", "a dog runs") == 3
    assert "--api-base" in capsys.readouterr().err


def test_caption_model_that_fails_to_load_on_first_request_exits_3(video, tmp_path, capsys):
    # The default hub model cannot load offline: the backend finds out only when the first
    # request loads it, and the runner still extracts keyframes for every video.
    out = tmp_path / "captions.jsonl"
    code = diffcap(
        "caption",
        str(video),
        str(video),
        "--out",
        str(out),
        "--backend",
        "transformers",
        "--workers",
        "1",
    )
    assert code == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "keyframes of 2 video(s)" in err
    assert len(list((tmp_path / "captions.keyframes").glob("*/keyframes.json"))) == 2
    assert not (tmp_path / "captions.failures.jsonl").exists()


def test_build_config_yaml_then_flags(tmp_path):
    from diffcap.cli.options import CAPTION_OPTIONS, MODEL_OPTIONS, build_config
    from diffcap.errors import ConfigError

    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text("model:\n  concurrency: 3\n  max_tokens: 99\ncaption:\n  mode: fast\n")
    cfg = build_config(
        {
            "config_path": str(cfg_file),
            "max_tokens": 7,
            "summary": False,
            "interval": 0.5,
            "templates": ("summary=s.txt",),
        },
        {**MODEL_OPTIONS, **CAPTION_OPTIONS},
    )
    assert cfg.model.concurrency == 3 and cfg.model.max_tokens == 7
    assert cfg.caption.mode == "fast" and cfg.summary.enabled is False
    assert cfg.keyframes.interval == 0.5 and cfg.caption.templates == {"summary": "s.txt"}
    # fields not given stay unset, so a preset's generation defaults can apply to them
    assert "num_beams" not in cfg.model.model_fields_set
    with pytest.raises(ConfigError, match="NAME=PATH"):
        build_config({"templates": ("oops",)}, MODEL_OPTIONS)
    with pytest.raises(ConfigError, match="concurrency"):
        build_config({"concurrency": 0}, MODEL_OPTIONS)
