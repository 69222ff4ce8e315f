"""`diffcap caption`, `summarize`, `recaption` through the real CLI entry point, over real
HTTP (the recording fault server, `transformers serve` with the tiny LLaVA)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import support.servers as servers
import support.tiny_llava as tiny
from diffcap.cli.caption import run_dir_for
from diffcap.video.synth import Scene, write_video
from support.cli import diffcap

# The shared server fixtures, made visible to this module.
_fault_server_session = servers._fault_server_session
fault_server = servers.fault_server
tiny_llava_server = servers.tiny_llava_server
tiny_llava_dir = tiny.tiny_llava_dir


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
    # The run directory beside the output holds the keyframes; the record points at them
    # relative to the output's folder.
    run_dir = out.parent / "captions.run"
    assert run_dir_for(out) == run_dir
    assert (run_dir / "keyframes" / "clip" / "keyframes.json").is_file()
    assert rec["keyframes"] and all((out.parent / k["file"]).is_file() for k in rec["keyframes"])
    assert all(k["file"].startswith("captions.run/keyframes/clip/") for k in rec["keyframes"])
    assert (run_dir / "failures.jsonl").read_text() == ""
    assert not (out.parent / "captions.keyframes").exists()
    assert not (out.parent / "captions.failures.jsonl").exists()
    stdout = capsys.readouterr().out
    assert "videos: 1 done, 0 failed, 0 filtered, 0 pending" in stdout
    assert f"requests: {rec['usage']['requests']} new, 0 cached" in stdout
    assert f"records: 1 in {out}" in stdout


def test_caption_fast_and_failures(fault_server, video, tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    missing = tmp_path / "missing.mp4"  # a bad input: listed, not fatal to the batch
    out = tmp_path / "captions.jsonl"
    code = diffcap(
        "caption",
        str(bad),
        str(video),
        str(missing),
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
    assert rec["video_id"] == "clip" and rec["mode"] == "fast"
    assert len(fault_server.requests) == 1
    assert all((tmp_path / k["file"]).is_file() for k in rec["keyframes"])
    failures = {f["source"]: f for f in records(tmp_path / "captions.run" / "failures.jsonl")}
    assert set(failures) == {str(bad), str(missing)}
    broken = failures[str(bad)]
    assert (broken["video_id"], broken["stage"], broken["reason"]) == (
        "bad",
        "prepare",  # the probe finds it, before any frame is decoded
        "not_a_video",
    )
    assert {"video_id", "source", "stage", "reason", "error", "attempts"} <= set(broken)
    assert "usage" not in broken
    gone = failures[str(missing)]
    assert (gone["stage"], gone["reason"]) == ("input", "not_found")
    assert not (tmp_path / "captions.failures.jsonl").exists()
    assert not (tmp_path / "captions.run" / "keyframes" / "bad").exists()
    captured = capsys.readouterr()
    assert "1 done, 1 failed" in captured.out and "1 bad input(s)" in captured.out
    assert str(tmp_path / "captions.run" / "failures.jsonl") in captured.err


def test_caption_without_model_exits_3_and_decodes_nothing(no_openai_env, video, tmp_path, capsys):
    out = tmp_path / "captions.jsonl"
    code = diffcap("caption", str(video), "--out", str(out), "--interval", "1")
    assert code == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert "--api-base" in err and "--backend transformers --model" in err
    # both keys the caption command reads
    assert "DIFFCAP_API_KEY" in err and "OPENAI_API_KEY" in err and "--api-key" in err
    # The model is checked before any frame is decoded: no keyframes, no records.
    run_dir = run_dir_for(out)
    assert not (run_dir / "keyframes").exists()
    assert not (tmp_path / "captions.keyframes").exists()
    assert not out.exists()


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
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "model folder not found" in err
    assert not (run_dir_for(out) / "keyframes").exists()  # checked before decoding


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
    # no image, no run directory needed: only the records file
    shutil.rmtree(run_dir_for(captioned))
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


def test_summarize_unknown_video_id(captioned, fault_server, capsys):
    args = ("--video-id", "nope", "--start", "0", "--end", "9", "--api-base", fault_server.base_url)
    # a ConfigError: bad usage, exit 2
    assert diffcap("summarize", str(captioned), *args) == 2
    err = capsys.readouterr().err.strip()
    assert "known ids: clip" in err and len(err.splitlines()) == 1
    assert fault_server.requests == []


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


def test_caption_hub_model_missing_offline_exits_3_before_decoding(video, tmp_path, capsys):
    # The default hub model is not cached and the hub is off: the preflight check finds out
    # before any frame is decoded (it used to surface only on the first request).
    out = tmp_path / "captions.jsonl"
    code = diffcap(
        "caption", str(video), "--out", str(out), "--backend", "transformers", "--workers", "1"
    )
    assert code == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "not in the Hugging Face cache" in err and "HF_HUB_OFFLINE" in err
    assert not (run_dir_for(out) / "keyframes").exists()
    assert not out.exists()


def test_caption_model_that_fails_to_load_on_first_request_stops_with_5(video, tmp_path, capsys):
    """A model folder that passes the preflight (it has a config.json) but cannot be loaded:
    the first request finds out, the video is deferred (not failed), the run stops."""
    pytest.importorskip("transformers")
    from diffcap.pipeline.status import run_status

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "no-such-architecture"}')
    other = tmp_path / "other.mp4"
    shutil.copy(video, other)  # two files: the same file given twice is one video
    out = tmp_path / "captions.jsonl"
    args = ("--out", str(out), "--backend", "transformers", "--model", str(model))
    code = diffcap("caption", str(video), str(other), *args, "--workers", "1")
    assert code == 4  # stopped by a fault of the world: rerun once fixed
    captured = capsys.readouterr()
    assert "stopped:" in captured.out and "nothing was marked failed" in captured.out
    assert "model_unavailable" in captured.out and "cannot load model" in captured.out
    run_dir = run_dir_for(out)
    st = run_status(run_dir)
    assert st["counts"] == {"pending": 2, "done": 0, "failed": 0, "filtered": 0}
    assert st["deferred"] and {d["reason"] for d in st["deferred"]} == {"model_unavailable"}
    assert {d["stage"] for d in st["deferred"]} == {"caption"}
    assert (run_dir / "failures.jsonl").read_text() == ""
    assert out.read_text() == ""  # no record for a video that was not captioned
    # the keyframes of a deferred video are kept for the rerun
    deferred = {d["video_id"] for d in st["deferred"]}
    assert all((run_dir / "keyframes" / v / "keyframes.json").is_file() for v in deferred)


def test_config_from_params_yaml_then_flags(tmp_path):
    from diffcap.cli.options import config_from_params
    from diffcap.errors import ConfigError

    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text("model:\n  concurrency: 3\n  max_tokens: 99\ncaption:\n  mode: fast\n")
    params = {
        "config_path": str(cfg_file),
        "model__max_tokens": 7,
        "model__num_beams": None,  # a flag not given
        "summary__enabled": False,
        "keyframes__interval": 0.5,
        "templates": ("summary=s.txt",),
        "out": "captions.jsonl",  # not a config parameter: left for the command
    }
    cfg = config_from_params(params)
    assert params == {"out": "captions.jsonl"}  # every config parameter was popped
    assert cfg.model.concurrency == 3 and cfg.model.max_tokens == 7
    assert cfg.caption.mode == "fast" and cfg.summary.enabled is False
    assert cfg.keyframes.interval == 0.5 and cfg.caption.templates == {"summary": "s.txt"}
    # fields not given stay unset, so a preset's generation defaults can apply to them
    assert "num_beams" not in cfg.model.model_fields_set
    with pytest.raises(ConfigError, match="NAME=PATH"):
        config_from_params({"templates": ("oops",)})
    with pytest.raises(ConfigError, match="concurrency"):
        config_from_params({"model__concurrency": 0})


def test_caption_flags_come_from_the_config(capsys):
    assert diffcap("caption", "--help") == 0
    text = capsys.readouterr().out
    for flag in (
        "--preset",
        "--config",
        "--set",
        "--template",
        "--interval",
        "--max-seconds",
        "--min-duration",
        "--max-duration",
        "--api-base",
        "--api-key",
        "--model",
        "--concurrency",
        "--timeout",
        "--mode",
        "--prompt-preset",
        "--max-cost-usd",
        "--workers",
    ):
        assert flag in text, flag
    assert "(keyframes.max_seconds)" in text and "(filter.max_duration)" in text


def test_a_second_caption_to_the_same_file_holds_only_its_own_videos(
    fault_server, tmp_path, capsys
):
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    write_video(a, [Scene(2.0, hue=0.1), Scene(2.0, hue=0.5)], size=(64, 48), fps=10)
    write_video(b, [Scene(2.0, hue=0.7), Scene(2.0, hue=0.2)], size=(64, 48), fps=10)
    out = tmp_path / "caps.jsonl"
    flags = ["--api-base", fault_server.base_url, "--model", "m", "--interval", "1"]
    assert diffcap("caption", str(a), "--out", str(out), *flags) == 0
    assert diffcap("caption", str(b), "--out", str(out), *flags) == 0
    assert [json.loads(x)["video_id"] for x in out.read_text().splitlines()] == ["b"]
    paid = len(fault_server.requests)
    assert diffcap("caption", str(b), str(a), "--out", str(out), *flags) == 0
    assert [json.loads(x)["video_id"] for x in out.read_text().splitlines()] == ["b", "a"]
    assert len(fault_server.requests) == paid  # both were captioned before: nothing paid
