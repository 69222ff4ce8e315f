"""End to end over real HTTP: generated videos -> real keyframes -> `transformers serve` with a
tiny random-weight LLaVA (or the recording fault server) -> records on disk.

Captions from random weights are gibberish: these tests check structure, times, provenance,
usage and ordering, never text quality.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from diffcap.config import RunConfig
from diffcap.timeline import Usage
from diffcap.video.synth import Scene, write_video
from support.servers import Fault


def make_video(path: Path, hue: float) -> Path:
    """6 s, three distinct scenes -> keyframes at 0, 2, 4 and the last frame (interval 1 s)."""
    scenes = [
        Scene(2.0, layout="solid", hue=hue),
        Scene(2.0, layout="checker", hue=hue + 0.3),
        Scene(2.0, layout="rings", hue=hue + 0.15),
    ]
    write_video(path, scenes, size=(96, 64), fps=10)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("videos")
    return [make_video(d / "blue.mp4", 0.6), make_video(d / "red.mp4", 0.0)]


def run(
    cfg: dict,
    backend_name: str,
    model_cfg: dict,
    videos: list[Path],
    out: Path,
    preset: str = "diffcap",
) -> SimpleNamespace:
    """``diffcap caption``'s pipeline (prepare -> keyframes -> caption) into ``out``."""
    from diffcap.cli.caption import run_dir_for
    from diffcap.export import ExportOptions, open_records
    from diffcap.export.jsonl import write_jsonl
    from diffcap.pipeline import run_dataset

    cfg = RunConfig.model_validate(
        {
            **cfg,
            "model": {"backend": backend_name, **model_cfg},
            "keyframes": {"interval": 1.0, **cfg.get("keyframes", {})},
            "caption": {"prompt_preset": preset, **cfg.get("caption", {})},
        }
    )
    run_dir = run_dir_for(out)
    report = run_dataset([str(v) for v in videos], run_dir, cfg, command="caption", progress=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(open_records(run_dir), out, ExportOptions(progress=False))
    failures = [json.loads(x) for x in (run_dir / "failures.jsonl").read_text().splitlines()]
    usage = Usage(requests=report.requests_new + report.requests_cached)
    return SimpleNamespace(
        videos_ok=report.done_now, failures=failures, usage=usage, report=report, run_dir=run_dir
    )


def read_records(out: Path) -> dict[str, dict]:
    return {d["video_id"]: d for d in map(json.loads, out.read_text().splitlines())}


def check_slide_record(rec: dict, out: Path, backend: str, model: str) -> None:
    kfs, caps = rec["keyframes"], rec["captions"]
    assert len(kfs) >= 3
    assert [c["idx"] for c in caps] == [str(i) for i in range(len(kfs))] + ["-1"]
    assert [c["time"] for c in caps[:-1]] == [k["time"] for k in kfs]
    assert kfs[0]["time"] == 0.0 and kfs == sorted(kfs, key=lambda k: k["time"])
    assert caps[-1]["start"] == 0.0 and caps[-1]["end"] == pytest.approx(rec["duration"])
    assert all(isinstance(c["content"], str) and c["content"] for c in caps)
    for k in kfs:  # files are relative to the records file's directory
        assert (out.parent / k["file"]).is_file(), k["file"]
    prov = rec["provenance"]
    assert prov["backend"] == backend and prov["model"] == model
    assert prov["templates"]["differential"].endswith("differential@1")
    assert prov["diffcap_version"] and prov["created"] and prov["prompt_preset"]
    usage = rec["usage"]
    assert usage["requests"] == len(kfs) + 1
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0


@pytest.mark.parametrize("layout", ["two_images", "composite"])
def test_slide_over_transformers_serve(tiny_llava_server, videos, tmp_path, layout):
    out = tmp_path / "captions.jsonl"
    result = run(
        {"caption": {"pair_layout": layout}},
        "openai",
        {
            "api_base": tiny_llava_server.base_url,
            "model": tiny_llava_server.model,
            "max_tokens": 6,
            "concurrency": 4,
        },
        videos,
        out,
    )
    assert result.failures == [] and result.videos_ok == 2
    recs = read_records(out)
    assert set(recs) == {"blue", "red"}
    for rec in recs.values():
        check_slide_record(rec, out, "openai", tiny_llava_server.model)
        assert rec["provenance"]["pair_layout"] == layout
    assert result.usage.requests == sum(r["usage"]["requests"] for r in recs.values())


def test_fast_over_transformers_serve(tiny_llava_server, videos, tmp_path):
    out = tmp_path / "captions.jsonl"
    result = run(
        {"caption": {"mode": "fast", "fast_max_frames": 3}},
        "openai",
        {"api_base": tiny_llava_server.base_url, "model": tiny_llava_server.model, "max_tokens": 6},
        videos,
        out,
    )
    assert result.failures == []
    for rec in read_records(out).values():
        assert rec["mode"] == "fast"
        assert [c["idx"] for c in rec["captions"]] == ["-1"]
        assert rec["usage"]["requests"] == 1
        kf_idx = [k["idx"] for k in rec["keyframes"]]
        assert rec["fast_keyframes"][0] == kf_idx[0] and rec["fast_keyframes"][-1] == kf_idx[-1]
        assert len(rec["fast_keyframes"]) == 3


def test_slide_in_process_transformers_backend(tiny_llava_dir, videos, tmp_path):
    out = tmp_path / "captions.jsonl"
    result = run(
        {},
        "transformers",
        {"model": str(tiny_llava_dir), "max_tokens": 6, "device": "cpu"},
        videos[:1],
        out,
    )
    assert result.failures == []
    (rec,) = read_records(out).values()
    check_slide_record(rec, out, "transformers", str(tiny_llava_dir))


# --- what the server received -------------------------------------------------------------


def counting_reply():
    n = iter(range(10**6))
    return lambda body: f"caption number {next(n)} here"


def test_differential_request_carries_both_times_and_previous_caption(
    fault_server, videos, tmp_path
):
    fault_server.reply = counting_reply()
    out = tmp_path / "captions.jsonl"
    result = run(
        {},
        "openai",
        {"api_base": fault_server.base_url, "model": "m"},
        videos,
        out,
        preset="sharecaptioner",
    )
    assert result.failures == []
    received = fault_server.requests
    assert len(received) == result.usage.requests
    for rec in read_records(out).values():
        kfs, caps = rec["keyframes"], rec["captions"]
        for k in range(1, len(kfs)):
            prev_caption = caps[k - 1]["content"]
            # the one request that answered caption k is the one that got caption k-1
            (req,) = [r for r in received if r.prompt.endswith(f"before is: {prev_caption}")]
            # pair_layout auto + the sharecaptioner preset: the released vertical composite
            assert req.images == 1
            assert sent_images(req)[0].size == (96, 64 + 50 + 64)
            assert f"Video frame {k} at {kfs[k - 1]['time']:.2f} Second(s)" in req.prompt
            assert f"Video frame {k + 1} at {kfs[k]['time']:.2f} Second(s)" in req.prompt
            body_text = json.dumps(req.body)
            assert caps[k]["content"] not in body_text  # asked before it existed
        (summary_req,) = [
            r
            for r in received
            if caps[-2]["content"] in r.prompt and r.prompt.startswith("Summarize")
        ]
        assert summary_req.images == 0
        for k, cap in enumerate(caps[:-1]):
            assert (
                f"Video frame {k + 1} at {cap['time']:.2f} Second(s) description: {cap['content']}"
            ) in summary_req.prompt


def sent_images(req) -> list[Image.Image]:
    return [
        Image.open(io.BytesIO(base64.b64decode(p["image_url"]["url"].split(",", 1)[1])))
        for p in req.body["messages"][-1]["content"]
        if isinstance(p, dict) and p.get("type") == "image_url"
    ]


def test_explicit_pair_layout_beats_the_preset_layout(fault_server, videos, tmp_path):
    out = tmp_path / "captions.jsonl"
    run(
        {"caption": {"pair_layout": "two_images"}},
        "openai",
        {"api_base": fault_server.base_url, "model": "m"},
        videos[:1],
        out,
        preset="sharecaptioner",
    )
    (rec,) = read_records(out).values()
    diffs = [r for r in fault_server.requests if "describe what happend" in r.prompt]
    assert len(diffs) == len(rec["keyframes"]) - 1
    assert all(r.images == 2 for r in diffs)
    assert rec["provenance"]["pair_layout"] == "two_images"


@pytest.mark.parametrize("mode", ["slide", "fast"])
def test_windowed_prompts_are_told_the_window_not_the_file(fault_server, videos, tmp_path, mode):
    # --start 2 --end 5 of a 6 s video: a 3 s clip whose keyframe times stay on the file's clock.
    out = tmp_path / "captions.jsonl"
    run(
        {"caption": {"mode": mode}, "keyframes": {"start": 2.0, "end": 5.0}},
        "openai",
        {"api_base": fault_server.base_url, "model": "m"},
        videos[:1],
        out,
    )
    (rec,) = read_records(out).values()
    assert rec["duration"] == pytest.approx(6.0, abs=0.2)
    assert (rec["captions"][-1]["start"], rec["captions"][-1]["end"]) == (2.0, 5.0)
    if mode == "slide":
        (req,) = [r for r in fault_server.requests if r.prompt.startswith("Below are")]
        assert "keyframes of the clip from 2.0 s to 5.0 s of a video, 3.0 s long." in req.prompt
        for k in rec["keyframes"]:
            assert f"[{k['time']:.1f} s] " in req.prompt
            assert 2.0 <= k["time"] <= 5.0
    else:
        (req,) = fault_server.requests
        assert "(the clip from 2.0 s to 5.0 s of the video)." in req.prompt
    assert "6.0 s" not in req.prompt and "lasts" not in req.prompt


def test_whole_video_summary_is_told_the_video_length(fault_server, videos, tmp_path):
    out = tmp_path / "captions.jsonl"
    run({}, "openai", {"api_base": fault_server.base_url, "model": "m"}, videos[:1], out)
    (rec,) = read_records(out).values()
    (req,) = [r for r in fault_server.requests if r.prompt.startswith("Below are")]
    assert f"keyframes of one video that lasts {rec['duration']:.1f} s." in req.prompt
    assert "clip" not in req.prompt


def test_each_keyframe_image_is_sent_identically_in_both_requests(fault_server, videos, tmp_path):
    out = tmp_path / "captions.jsonl"
    run({}, "openai", {"api_base": fault_server.base_url, "model": "m"}, videos[:1], out)
    urls = [
        [
            p["image_url"]["url"]
            for p in r.body["messages"][-1]["content"]
            if isinstance(p, dict) and p.get("type") == "image_url"
        ]
        for r in fault_server.requests
    ]
    (rec,) = read_records(out).values()
    saved = [(out.parent / k["file"]).read_bytes() for k in rec["keyframes"]]
    first = urls[0]
    assert base64.b64decode(first[0].split(",", 1)[1]) == saved[0]  # the JPEG as saved
    chain = [u for u in urls if len(u) == 2]
    for a, b in itertools.pairwise(chain):
        assert a[1] == b[0]


# --- faults -------------------------------------------------------------------------------


@pytest.mark.allow_error_logs
def test_transient_faults_are_retried_and_every_video_completes(fault_server, videos, tmp_path):
    fault_server.fail("rate_limit", retry_after=0.1, at=0)
    fault_server.fail("server_error", at=2)
    fault_server.fail("stall", stall_s=5.0, at=4)
    fault_server.fail("drop", at=6)
    fault_server.fail("malformed", at=7)
    fault_server.fail("server_error", at=9)
    out = tmp_path / "captions.jsonl"
    result = run(
        {},
        "openai",
        {"api_base": fault_server.base_url, "model": "m", "timeout_s": 1.0, "max_retries": 4},
        videos,
        out,
    )
    assert result.failures == [] and result.videos_ok == 2
    faults = [r.fault for r in fault_server.requests if r.fault]
    assert sorted(faults) == sorted(
        ["rate_limit", "server_error", "stall", "drop", "malformed", "server_error"]
    )
    # every fault cost one extra request; the run paid only the successful ones (the two
    # summaries are the same prompt with the fault server's echo replies: replayed once)
    assert len(fault_server.requests) == result.report.requests_new + len(faults)
    for rec in read_records(out).values():
        check_slide_record(rec, out, "openai", "m")


def red_marking_reply(body) -> str:
    """Answers "REDVIDEO ..." when the first image is mostly red: a way to single out one
    video's later requests (its previous caption is in their prompt)."""
    for part in body["messages"][-1]["content"]:
        if isinstance(part, dict) and part.get("type") == "image_url":
            data = base64.b64decode(part["image_url"]["url"].split(",", 1)[1])
            r, _g, b = Image.open(io.BytesIO(data)).convert("RGB").resize((1, 1)).getpixel((0, 0))
            return "REDVIDEO frame" if r > b + 40 else "other video frame"
    return "summary text"


@pytest.mark.parametrize("fault", ["server_error", "status400"])
def test_a_video_whose_requests_keep_failing_is_reported(fault_server, videos, tmp_path, fault):
    """A 400 is the video's fault: failed, with its reason. 5xx after every retry is the
    server's: the video stays pending (nothing marked failed) and a rerun completes it."""
    fault_server.reply = red_marking_reply
    if fault == "server_error":  # retryable, but more failures than retries
        fault_server.fail(*["server_error"] * 3, when="REDVIDEO")
    else:  # not retryable: fails at once
        fault_server.fail(Fault("status", status=400), when="REDVIDEO")
    out = tmp_path / "captions.jsonl"
    model = {"api_base": fault_server.base_url, "model": "m", "max_retries": 2}
    result = run({}, "openai", model, videos, out)
    assert result.videos_ok == 1
    assert set(read_records(out)) == {"blue"}
    red_requests = [r for r in fault_server.requests if "REDVIDEO" in r.prompt]
    assert len(red_requests) == (3 if fault == "server_error" else 1)
    if fault == "status400":
        (failure,) = result.failures
        assert failure["video_id"] == "red" and failure["stage"] == "caption"
        assert failure["reason"] == "request_failed" and "400" in failure["error"]
        return
    assert result.failures == [] and result.report.counts["pending"] == 1
    assert result.report.exit_code == 4  # deferred: rerun to retry
    paid = len(fault_server.requests) - 3  # the first-frame request of red was paid
    again = run({}, "openai", model, videos, out)
    assert again.videos_ok == 1 and set(read_records(out)) == {"blue", "red"}
    assert again.report.requests_cached >= 1  # red's paid first frame was replayed
    assert len(fault_server.requests) - paid - 3 == again.report.requests_new


def test_bad_file_fails_at_keyframes_others_complete(fault_server, videos, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 1000)
    out = tmp_path / "out" / "captions.jsonl"
    result = run(
        {}, "openai", {"api_base": fault_server.base_url, "model": "m"}, [bad, *videos], out
    )
    assert result.videos_ok == 2
    (failure,) = result.failures
    assert failure["stage"] == "prepare" and failure["video_id"] == "broken"
    assert failure["reason"] not in ("", "error")


def test_many_videos_share_the_in_flight_limit(fault_server, videos, tmp_path):
    fault_server.latency = 0.05
    out = tmp_path / "captions.jsonl"
    many = []
    for n in range(3):  # copies: distinct sources, distinct ids
        for v in videos:
            many.append(tmp_path / f"{v.stem}{n}.mp4")
            many[-1].write_bytes(v.read_bytes())
    result = run(
        {}, "openai", {"api_base": fault_server.base_url, "model": "m", "concurrency": 2}, many, out
    )
    assert result.videos_ok == 6
    # at most 2 requests were ever in flight: arrival times never show 3 overlapping
    times = sorted(r.at for r in fault_server.requests)
    for a, c in zip(times, times[2:], strict=False):
        assert c - a >= 0.04


def test_composite_layout_sends_one_stacked_image(fault_server, videos, tmp_path):
    out = tmp_path / "captions.jsonl"
    run(
        {"caption": {"pair_layout": "composite"}},
        "openai",
        {"api_base": fault_server.base_url, "model": "m"},
        videos[:1],
        out,
    )
    (rec,) = read_records(out).values()
    diffs = [
        r
        for r in fault_server.requests
        if "keyframe 2 is at" in r.prompt.lower() or "changed between" in r.prompt
    ]
    assert len(diffs) == len(rec["keyframes"]) - 1
    for r in diffs:
        assert r.images == 1
        url = next(
            p["image_url"]["url"]
            for p in r.body["messages"][-1]["content"]
            if isinstance(p, dict) and p.get("type") == "image_url"
        )
        img = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        assert img.size == (96, 64 + 50 + 64)
