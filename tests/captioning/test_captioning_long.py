"""Videos of any length, end to end over real HTTP: prompts that fit the model's context,
the summary tree, parallel segments, and "over the context" as a recoverable fault.

The long videos are generated frame by frame (tiny pictures, 1 fps): an hour is ~3,600
frames and a few seconds to write.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from diffcap.captioning.citations import find_citations
from diffcap.config import RunConfig
from diffcap.video.synth import Scene, write_video
from support.cli import diffcap
from support.servers import start_transformers_serve
from support.tiny_llava import cached_tiny_llava


def long_video(path: Path, seconds: int, shot_s: int) -> Path:
    """``seconds`` of distinct static shots of ``shot_s`` seconds each (1 fps, 64x48)."""
    n = seconds // shot_s
    layouts = ("solid", "checker", "rings", "hstripes", "vstripes", "gradient")
    scenes = [
        Scene(float(shot_s), layout=layouts[i % 6], hue=(i * 0.137) % 1.0, moving=False)
        for i in range(n)
    ]
    write_video(path, scenes, size=(64, 48), fps=1)
    return path


def run_caption(video: Path, out: Path, cfg: dict) -> object:
    from diffcap.cli.caption import run_dir_for
    from diffcap.pipeline import run_dataset

    config = RunConfig.model_validate(cfg)
    return run_dataset([str(video)], run_dir_for(out), config, command="caption", progress=False)


def record_of(run_dir: Path) -> dict:
    from diffcap.export import open_records

    (rec,) = list(open_records(run_dir))
    return rec.to_json()


def talkative(words: int):
    """A reply: ``words`` words, plus (for summary prompts) a citation of the first and last
    time stamps of the prompt and one far outside any range."""

    def reply(body: dict) -> str:
        prompt = " ".join(
            p.get("text", "")
            for m in body["messages"]
            for p in (m["content"] if isinstance(m["content"], list) else [{"text": m["content"]}])
        )
        cites = find_citations(prompt)
        extra = f" First {cites[0][0]} last {cites[-1][0]} and [9:59:59]." if cites else ""
        return ("word " * words).strip() + "." + extra

    return reply


def check_tree(rec: dict) -> dict:
    tree = rec["summary_tree"]
    assert tree["levels"] >= 2
    nodes = {n["id"]: n for n in tree["nodes"]}
    assert nodes["-1"]["content"] == rec["captions"][-1]["content"]
    for node in tree["nodes"]:
        for c in node["citations"]:  # every citation inside the node's children's range
            assert node["start"] - 1 <= c["start"] <= c["end"] <= node["end"] + 1
        assert "[9:59:59]" not in node["content"]
    level1 = [n for n in tree["nodes"] if n["level"] == 1]
    caption_ids = [c["idx"] for c in rec["captions"][:-1]]
    assert [c for n in level1 for c in n["children"]] == caption_ids
    return nodes


@pytest.mark.parametrize("chain", ["single", "segments"])
def test_a_server_that_refuses_large_prompts_leads_to_split_and_retry(
    fault_server, tmp_path, chain
):
    """The budget is told a far too large window; the server (vLLM's words) refuses; every
    step is split and sent again, the record is complete and nothing failed for good. The
    first run is stopped part-way (a cost cap); the rerun pays for no answer twice."""
    video = long_video(tmp_path / "v.mp4", 240, 8)
    fault_server.context_limit = 700
    fault_server.reply = talkative(120)
    out = tmp_path / "c.jsonl"
    model = {
        "backend": "openai",
        "api_base": fault_server.base_url,
        "model": "m",
        "max_tokens": 150,
        "context_tokens": 100_000,  # wrong on purpose: the server knows better
        "concurrency": 4,
        "prices": {"m": {"input": 100_000.0, "output": 0.0}},  # ~$25 a request
    }
    cfg = {
        "model": model,
        "keyframes": {"interval": 4.0},
        "caption": {"chain": chain, "segment_keyframes": 8},
    }
    first = run_caption(video, out, {**cfg, "engine": {"max_cost_usd": 400.0}})
    assert first.done_now == 0 and first.failed_now == 0  # stopped part-way, pending
    paid = len(fault_server.answered)
    assert paid > 0
    report = run_caption(video, out, cfg)
    assert report.done_now == 1 and report.failed_now == 0
    assert fault_server.refused_context >= 1
    answered = fault_server.answered
    assert len(answered) == len(set(answered)) > paid  # no answer was paid for twice
    from diffcap.cli.caption import run_dir_for

    rec = record_of(run_dir_for(out))
    assert len(rec["captions"]) == len(rec["keyframes"]) + 1 >= 20
    assert ("segments" in rec) == (chain == "segments")
    check_tree(rec)


def test_images_alone_over_the_context_stop_with_the_numbers(fault_server, tmp_path, capsys):
    video = long_video(tmp_path / "v.mp4", 20, 5)
    out = tmp_path / "c.jsonl"
    code = diffcap(
        "caption", str(video), "--out", str(out),
        "--api-base", fault_server.base_url, "--model", "m",
        "--set", "model.context_tokens=1200", "--set", "model.context_probe=false",
        "--set", "model.max_tokens=64",
    )  # fmt: skip
    said = capsys.readouterr().out
    assert code == 4 and len(fault_server.requests) == 0
    line = next(x for x in said.splitlines() if "context_too_small" in x)
    assert "needs 1,805 tokens (1 image(s) x 1,500" in line and "context is 1,200" in line
    assert "--image-max-side" in line
    st = sqlite3.connect(tmp_path / "c.run" / "run.sqlite")
    (status,) = st.execute("SELECT status FROM videos").fetchone()
    assert status == "pending"  # not failed for good: change the setting and rerun


def test_long_videos_run_as_parallel_segments_joined_by_bridges(fault_server, tmp_path):
    video = long_video(tmp_path / "v.mp4", 600, 6)
    fault_server.latency = 0.05
    out = tmp_path / "c.jsonl"
    cfg = {
        "model": {
            "backend": "openai",
            "api_base": fault_server.base_url,
            "model": "m",
            "concurrency": 16,
            "context_tokens": 100_000,
        },
        "keyframes": {"interval": 3.0},
        "caption": {"segment_keyframes": 10},
    }
    report = run_caption(video, out, cfg)
    assert report.done_now == 1
    from diffcap.cli.caption import run_dir_for

    rec = record_of(run_dir_for(out))
    n = len(rec["keyframes"])
    segments = rec["segments"]
    assert n >= 60 and len(segments) >= n // 14
    assert rec["provenance"]["chain"] == "segments"
    caps = rec["captions"]
    assert [c["idx"] for c in caps] == [str(i) for i in range(n)] + ["-1"]
    assert [c["time"] for c in caps[:-1]] == [k["time"] for k in rec["keyframes"]]
    assert next(s["start_idx"] for s in segments) == 0 and segments[-1]["end_idx"] == n - 1
    prompts = [r.prompt for r in fault_server.requests]
    for seg in segments[1:]:  # each boundary: one differential call across the seam
        k = seg["start_idx"]
        before, at = rec["keyframes"][k - 1]["time"], rec["keyframes"][k]["time"]
        assert sum(f"{before:.1f} s and keyframe {k + 1}" in p for p in prompts) == 1
        assert f"at {at:.1f} s" in " ".join(prompts)
    # One first-frame caption per segment, one differential per later keyframe, a summary.
    firsts = [p for p in prompts if "What happened up to keyframe" not in p]
    assert len(firsts) == len(segments) + 1  # + the summary
    assert len(prompts) == len(segments) + (n - 1) + 1
    assert fault_server.max_in_flight >= min(8, len(segments))
    answered = len(fault_server.answered)
    run_caption(video, out, cfg)
    assert len(fault_server.answered) == answered


@pytest.fixture(scope="module")
def small_context_server():
    """``transformers serve`` of a tiny LLaVA whose context is 2,048 positions."""
    folder = cached_tiny_llava(positions=2048)
    with start_transformers_serve(folder) as handle:
        yield handle


@pytest.mark.timeout(900)
def test_an_hour_through_transformers_serve_with_a_small_context(
    small_context_server, tmp_path, caplog
):
    srv = small_context_server
    video = long_video(tmp_path / "hour.mp4", 3600, 60)
    out = tmp_path / "c.jsonl"
    cfg = {
        "model": {
            "backend": "openai",
            "api_base": srv.base_url,
            "model": srv.model,
            "max_tokens": 32,
            "concurrency": 8,
            "timeout_s": 60,
        },
        "keyframes": {"interval": 30.0},
        "caption": {"segment_keyframes": 16},
    }
    report = run_caption(video, out, cfg)
    assert report.done_now == 1 and report.failed_now == 0
    from diffcap.cli.caption import run_dir_for

    run_dir = run_dir_for(out)
    rec = record_of(run_dir)
    assert rec["duration"] >= 3600 and len(rec["keyframes"]) >= 50
    assert rec["provenance"]["chain"] == "segments"
    nodes = check_tree(rec)
    assert len(nodes) >= 3
    # The server's own token counts: no request came near the window (prompt + answer).
    db = sqlite3.connect(run_dir / "run.sqlite")
    counts = [p for (p,) in db.execute("SELECT prompt_tokens FROM requests")]
    assert len(counts) == report.requests_new and max(counts) + 32 <= 2048
    assert "refused a request as over the context" not in caplog.text  # none was refused
    again = run_caption(video, out, cfg)
    assert again.requests_new == 0
