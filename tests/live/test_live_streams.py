"""Live captioning of real streams made here: FFmpeg writing HLS in real time served over
loopback HTTP, and a file FFmpeg is still writing. Each test is bounded (< ~40 s)."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

import pytest

from diffcap.live import LiveOptions, caption_live, read_lines
from diffcap.live.runner import LiveReport
from support.live import FFMPEG, HLSStream, free_port, grow_file, model_cfg, push_rtsp

pytestmark = pytest.mark.skipif(FFMPEG is None, reason="needs the ffmpeg program")


def background(fn: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["report"] = fn()
        except BaseException as exc:  # reported by the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def finish(thread: threading.Thread, box: dict[str, Any], timeout: float = 60) -> LiveReport:
    thread.join(timeout)
    assert not thread.is_alive(), "the live run did not end"
    if "error" in box:
        raise box["error"]
    return box["report"]


def of(lines: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [x for x in lines if x["type"] == kind]


def wait_for(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def check_chain(captions: list[dict[str, Any]]) -> None:
    assert [int(c["idx"]) for c in captions] == list(range(len(captions)))
    times = [c["time"] for c in captions]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert captions[0]["kind"] == "first"


def test_hls_captions_appear_while_the_stream_plays(tmp_path, scenes_video, fault_server):
    out = tmp_path / "live.jsonl"
    opts = LiveOptions(interval=1.0, from_start=True, stall_s=4, give_up_s=10, summary_every_s=5)
    with HLSStream(tmp_path, scenes_video, seconds=12) as hls:
        began = time.time()
        cfg = model_cfg(fault_server.base_url)
        thread, box = background(lambda: caption_live(hls.url, out, cfg, opts))
        # captions are in the file while FFmpeg is still writing the stream
        wait_for(lambda: len(of(read_lines(out), "caption")) >= 2, 20, "two captions")
        assert hls.alive(), "the stream had ended before the first captions were written"
        report = finish(thread, box)
    lines = read_lines(out)
    captions = of(lines, "caption")
    assert "EXT-X-ENDLIST" in report.reason
    assert len(captions) >= 4 and report.captions == len(captions)
    check_chain(captions)
    assert all(c["kind"] == "differential" for c in captions[1:])
    # wall clock from EXT-X-PROGRAM-DATE-TIME, close to when the frames were written
    assert {c["wall_source"] for c in captions} == {"program_date_time"}
    walls = [datetime.fromisoformat(c["wall"]).timestamp() for c in captions]
    assert began - 3 < walls[0] and walls[-1] < time.time()
    assert all(0 <= c["delay_s"] < 5 for c in captions)
    # rolling summaries, then the run's summary; every paid request made one line
    summaries = of(lines, "summary")
    assert summaries and summaries[-1].get("final")
    rolling = [s for s in summaries if not s.get("final")]
    assert summaries[-1]["windows"] == len(rolling) >= 2
    assert len(fault_server.answered) == len(captions) + len(rolling) + 1
    assert (out.parent / "live.run" / "record.json").is_file()
    assert of(lines, "gap") == []


def test_growing_file_is_captioned_as_it_is_written(tmp_path, scenes_video, fault_server):
    ts, out = tmp_path / "rec.ts", tmp_path / "rec.jsonl"
    writer = grow_file(scenes_video, ts, seconds=10)
    try:
        wait_for(lambda: ts.exists() and ts.stat().st_size > 0, 15, "the file")
        opts = LiveOptions(interval=1.0, file_idle_s=2, summary_every_s=0)
        cfg = model_cfg(fault_server.base_url)
        thread, box = background(lambda: caption_live(str(ts), out, cfg, opts))
        wait_for(lambda: len(of(read_lines(out), "caption")) >= 2, 20, "two captions")
        assert writer.poll() is None, "the file was complete before the first captions"
        report = finish(thread, box)
    finally:
        writer.kill()
    captions = of(read_lines(out), "caption")
    assert report.reason == "the file stopped growing"
    check_chain(captions)
    assert len(captions) >= 3 and captions[-1]["time"] > 6
    assert {c["wall_source"] for c in captions} == {"arrival"}


def test_source_killed_and_restarted_gives_a_gap_and_recovers(tmp_path, scenes_video, fault_server):
    out = tmp_path / "live.jsonl"
    opts = LiveOptions(interval=1.0, from_start=True, stall_s=3, give_up_s=20, summary_every_s=0)
    with HLSStream(tmp_path, scenes_video) as hls:
        cfg = model_cfg(fault_server.base_url)
        thread, box = background(lambda: caption_live(hls.url, out, cfg, opts))
        wait_for(lambda: len(of(read_lines(out), "caption")) >= 2, 20, "two captions")
        hls.kill()  # the broadcaster dies: no EXT-X-ENDLIST
        time.sleep(2)
        hls.start(seconds=8)  # ... and comes back with a new playlist
        report = finish(thread, box)
    lines = read_lines(out)
    gaps = of(lines, "gap")
    assert "EXT-X-ENDLIST" in report.reason
    assert len(gaps) == 1, gaps
    gap = gaps[0]
    assert gap["end"] - gap["start"] >= 2  # at least the time the writer was gone
    captions = of(lines, "caption")
    before = [c for c in captions if c["time"] <= gap["start"]]
    after = [c for c in captions if c["time"] >= gap["end"]]
    assert before and after and len(before) + len(after) == len(captions)  # none inside
    assert after[0]["kind"] == "first"  # no caption invented across the gap
    check_chain(captions)
    # the gap line comes between the last caption before and the first after
    order = [x["type"] for x in lines if x["type"] in ("caption", "gap")]
    assert order.index("gap") == len(before)


def test_rtsp_published_to_diffcap_listening(tmp_path, scenes_video, fault_server):
    """FFmpeg pushes RTSP to diffcap (listen mode); the publisher stops and a new one comes:
    captions from both, one gap between, the end after give_up_s without a publisher."""
    url, out = f"rtsp://127.0.0.1:{free_port()}/live", tmp_path / "cam.jsonl"
    opts = LiveOptions(interval=1.0, rtsp_listen=True, give_up_s=4, summary_every_s=0)
    cfg = model_cfg(fault_server.base_url)
    thread, box = background(lambda: caption_live(url, out, cfg, opts))
    time.sleep(1.0)
    for _ in range(2):
        pusher = push_rtsp(scenes_video, url, seconds=5)
        assert pusher.wait(timeout=30) == 0
        time.sleep(0.5)
    report = finish(thread, box)
    lines = read_lines(out)
    captions, gaps = of(lines, "caption"), of(lines, "gap")
    assert report.reason.startswith("gave up after 4 s")
    assert len(gaps) == 1 and len(captions) >= 4
    check_chain(captions)
    after = [c for c in captions if c["time"] >= gaps[0]["end"]]
    assert after and after[0]["kind"] == "first"
