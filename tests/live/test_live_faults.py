"""Faults of a live world: diffcap killed with SIGKILL and restarted on the same run, and a
model slower than the stream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from diffcap.live import LiveOptions, caption_live, read_lines
from support.live import FFMPEG, HLSStream, grow_file, model_cfg

pytestmark = pytest.mark.skipif(FFMPEG is None, reason="needs the ffmpeg program")


def of(lines, kind):
    return [x for x in lines if x["type"] == kind]


def live_cli(url: str, out: Path, api: str, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable, "-m", "diffcap", "caption", "--live", url, "--out", str(out),
        "--backend", "openai", "--api-base", api, "--model", "m", "--api-key", "k",
        "--interval", "1", "--summary-every", "0", "--json", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def requests_of_summaries(lines) -> int:
    """Rolling summaries cost one request each here; the final one costs one only when it
    merges several windows (one window is the summary itself)."""
    rolling = [s for s in of(lines, "summary") if not s.get("final")]
    final = [s for s in of(lines, "summary") if s.get("final")]
    return len(rolling) + sum(1 for s in final if s["windows"] > 1)


def wait_captions(out: Path, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(of(read_lines(out), "caption")) < n:
        assert time.monotonic() < deadline, f"fewer than {n} captions in {timeout} s"
        time.sleep(0.1)


def test_sigkill_and_restart_continues_at_the_live_edge_paying_nothing_twice(
    tmp_path, scenes_video, fault_server
):
    out = tmp_path / "live.jsonl"
    with HLSStream(tmp_path, scenes_video) as hls:
        first = live_cli(hls.url, out, fault_server.base_url)
        try:
            wait_captions(out, 3, 30)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        paid_before = len(fault_server.answered)
        before = of(read_lines(out), "caption")
        time.sleep(1.5)
        second = live_cli(hls.url, out, fault_server.base_url, "--for", "6")
        _, err = second.communicate(timeout=60)
        assert second.returncode == 0, err.decode()[-2000:]
    lines = read_lines(out)
    starts, gaps, captions = of(lines, "start"), of(lines, "gap"), of(lines, "caption")
    assert [s["resumed"] for s in starts] == [False, True]
    # the restart resumes the run's clock at the live edge, after a gap marker
    assert len(gaps) == 1 and gaps[0]["reason"] == "diffcap restarted"
    assert gaps[0]["start"] == pytest.approx(before[-1]["time"], abs=1e-3)
    assert gaps[0]["end"] - gaps[0]["start"] >= 1.5
    after = captions[len(before) :]
    assert after and after[0]["kind"] == "first" and after[0]["time"] >= gaps[0]["end"]
    assert [int(c["idx"]) for c in captions] == list(range(len(captions)))
    # nothing paid twice: every answered request is distinct, the first process's answers
    # were not asked again, and each paid request made a line (at most one answered in
    # flight when the first process was killed)
    answered = fault_server.answered
    assert len(set(answered)) == len(answered)
    assert paid_before <= len(before) + 1
    made = len(captions) + requests_of_summaries(lines)
    assert made <= len(answered) <= made + 1
    assert of(lines, "end")[-1]["reason"] == "--for 6 s"


def test_slow_model_keeps_delay_bounded_and_records_skipped(tmp_path, scenes_video, fault_server):
    """Candidates every 0.5 s, each kept (threshold 1), a model answering in 1.5 s: most
    keyframes cannot be captioned; the queue skips the older ones, so delay stays flat."""
    latency = 1.5
    fault_server.latency = latency
    ts, out = tmp_path / "rec.ts", tmp_path / "rec.jsonl"
    writer = grow_file(scenes_video, ts, seconds=16)
    try:
        while not (ts.exists() and ts.stat().st_size):
            time.sleep(0.1)
        cfg = model_cfg(fault_server.base_url, keyframes={"threshold": 1.0})
        opts = LiveOptions(interval=0.5, file_idle_s=2, summary_every_s=0, queue=1)
        report = caption_live(str(ts), out, cfg, opts)
    finally:
        writer.kill()
    lines = read_lines(out)
    captions, skipped = of(lines, "caption"), of(lines, "skipped")
    assert len(skipped) >= 10 and report.skipped == len(skipped)
    assert all(s["reason"] == "queue_full" for s in skipped)
    # bound: one call in flight when the keyframe arrives, then its own call (+ slack)
    delays = [c["delay_s"] for c in captions]
    assert max(delays) <= 2 * latency + 1.0, delays
    half = len(delays) // 2
    assert sum(delays[half:]) / len(delays[half:]) <= sum(delays[:half]) / half + 0.5
    # a skipped keyframe lies between the captions around it; the chain still has no hole
    times = sorted([c["time"] for c in captions] + [s["time"] for s in skipped])
    assert len(set(times)) == len(times)
    assert [int(c["idx"]) for c in captions] == list(range(len(captions)))


def test_growing_file_restart_reads_on_where_it_stopped(tmp_path, scenes_video, fault_server):
    """A file keeps every frame: a second process reads on after the last caption, with no
    gap, and its chain goes on with a differential caption."""
    ts, out = tmp_path / "rec.ts", tmp_path / "rec.jsonl"
    writer = grow_file(scenes_video, ts, seconds=12)
    try:
        while not (ts.exists() and ts.stat().st_size):
            time.sleep(0.1)
        cfg = model_cfg(fault_server.base_url)
        caption_live(str(ts), out, cfg, LiveOptions(interval=1.0, summary_every_s=0, duration=4))
        before = of(read_lines(out), "caption")
        opts = LiveOptions(interval=1.0, file_idle_s=2, summary_every_s=0)
        report = caption_live(str(ts), out, cfg, opts)
    finally:
        writer.kill()
    lines = read_lines(out)
    captions = of(lines, "caption")
    assert report.reason == "the file stopped growing"
    assert of(lines, "gap") == []
    after = captions[len(before) :]
    assert before and after and after[0]["kind"] == "differential"
    assert after[0]["time"] > before[-1]["time"]
    times = [c["time"] for c in captions]
    assert times == sorted(set(times)) and times[-1] > 8
    assert len(set(fault_server.answered)) == len(fault_server.answered)


def test_summarize_any_window_of_a_live_run_on_demand(tmp_path, scenes_video, fault_server):
    """``diffcap summarize`` reads a live records file as one record: the window's captions
    go to one summary request, no frame decoded."""
    from click.testing import CliRunner

    from diffcap.cli.main import cli

    ts, out = tmp_path / "rec.ts", tmp_path / "rec.jsonl"
    writer = grow_file(scenes_video, ts, seconds=8)
    try:
        while not (ts.exists() and ts.stat().st_size):
            time.sleep(0.1)
        cfg = model_cfg(fault_server.base_url)
        caption_live(str(ts), out, cfg, LiveOptions(interval=1.0, file_idle_s=2, summary_every_s=0))
    finally:
        writer.kill()
    captions = of(read_lines(out), "caption")
    inside = [c for c in captions if 2.0 <= c["time"] <= 6.0]
    paid = len(fault_server.answered)
    args = ["summarize", str(out), "--start", "2", "--end", "6", "--json", "--backend", "openai",
            "--api-base", fault_server.base_url, "--model", "m", "--api-key", "k"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    rec = json.loads(result.output.strip().splitlines()[-1])
    assert [c["idx"] for c in rec["captions"][:-1]] == [c["idx"] for c in inside]
    assert rec["captions"][-1]["idx"] == "-1"
    assert len(fault_server.answered) == paid + 1
    prompt = fault_server.answered[-1]
    assert all(c["content"] in prompt for c in inside)


def test_model_outage_pauses_captioning_without_losing_the_stream(
    tmp_path, scenes_video, fault_server
):
    """Four requests in a row fail (no retries inside the backend): the run neither stops nor
    falls behind; keyframes it could not caption are skipped with the reason, newer ones are
    captioned, and the chain has no hole."""
    fault_server.fail("server_error", at=[1, 2, 3, 4])
    ts, out = tmp_path / "rec.ts", tmp_path / "rec.jsonl"
    writer = grow_file(scenes_video, ts, seconds=10)
    try:
        while not (ts.exists() and ts.stat().st_size):
            time.sleep(0.1)
        cfg = model_cfg(fault_server.base_url, model={"max_retries": 0})
        opts = LiveOptions(interval=1.0, file_idle_s=2, summary_every_s=0)
        report = caption_live(str(ts), out, cfg, opts)
    finally:
        writer.kill()
    lines = read_lines(out)
    captions = of(lines, "caption")
    assert report.reason == "the file stopped growing"
    assert len(fault_server.requests) >= 5 + len(captions) - 1
    assert captions[-1]["time"] > 6  # caught up after the outage
    assert [int(c["idx"]) for c in captions] == list(range(len(captions)))
    failed = [s for s in of(lines, "skipped") if s["reason"].startswith("model_error")]
    assert all(s["time"] < captions[-1]["time"] for s in failed)
