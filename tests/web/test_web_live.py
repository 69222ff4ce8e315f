"""The viewer follows a live run: server-sent events carry each caption as it is written,
the keyframe images become servable, and in a browser the timeline grows."""

from __future__ import annotations

import http.client
import json
import threading
import time
from urllib.parse import urlparse

import pytest

from diffcap.live import LiveOptions, caption_live, read_lines
from diffcap.web.data import load_runs
from diffcap.web.viewer import ViewerApp
from support.live import FFMPEG, grow_file, model_cfg
from support.servers import _fault_server_session, fault_server  # noqa: F401

pytestmark = pytest.mark.skipif(FFMPEG is None, reason="needs the ffmpeg program")


@pytest.fixture
def live_run(tmp_path, fault_server):  # noqa: F811 (the fixture imported above)
    """A file FFmpeg writes for 10 s, captioned live in a thread; yields the records file
    once it holds one caption."""
    from diffcap.video.synth import sample_video

    src, ts, out = tmp_path / "src.mp4", tmp_path / "rec.ts", tmp_path / "rec.jsonl"
    sample_video(src, duration=12, size=(160, 96), fps=10, scenes=8)
    writer = grow_file(src, ts, seconds=10)
    while not (ts.exists() and ts.stat().st_size):
        time.sleep(0.1)
    opts = LiveOptions(interval=1.0, file_idle_s=2, summary_every_s=0)
    cfg = model_cfg(fault_server.base_url)
    thread = threading.Thread(target=caption_live, args=(str(ts), out, cfg, opts), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not any(x["type"] == "caption" for x in read_lines(out)):
        assert time.monotonic() < deadline, "no caption"
        time.sleep(0.1)
    yield out
    thread.join(40)
    writer.kill()


def events(url: str, timeout: float = 40) -> list[tuple[str, dict]]:
    """Read a text/event-stream to its end: [(event, data)]."""
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    conn.request("GET", u.path + ("?" + u.query if u.query else ""))
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type").startswith("text/event-stream")
    out, event = [], "message"
    for raw in resp:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            out.append((event, json.loads(line[6:])))
    conn.close()
    return out


def test_server_sent_events_carry_captions_as_they_are_written(live_run, serve_app):
    app = ViewerApp(load_runs([live_run]))
    base = serve_app(app).rstrip("/")
    detail = json.loads(http_get(base + "/api/videos/0"))
    assert detail["provenance"]["live"] and detail["video_id"] == "live"
    loaded = len(detail["keyframes"])
    got = events(f"{base}/api/live/0?from={detail['provenance']['live_offset']}")
    kinds = [e for e, _ in got]
    assert kinds[-1] == "end"
    captions = [d for e, d in got if e == "caption"]
    assert captions, "no caption came after the page loaded"
    # the events are exactly the captions written after the offset, in order
    written = [x for x in read_lines(live_run) if x["type"] == "caption"]
    assert [int(c["idx"]) for c in captions] == [int(c["idx"]) for c in written[loaded:]]
    for c in captions:
        view = c["keyframe_view"]
        assert view["idx"] == int(c["idx"]) and view["caption"] == c["content"]
        assert http_get(base + view["src"], raw=True)[:2] == b"\xff\xd8"  # now servable JPEG
    # a page loaded now sees every caption
    assert len(json.loads(http_get(base + "/api/videos/0"))["keyframes"]) == len(written)


def test_a_record_that_is_not_live_has_no_event_stream(tmp_path, serve_app):
    rec = {"video_id": "v", "keyframes": [], "captions": []}
    (tmp_path / "c.jsonl").write_text(json.dumps(rec) + "\n")
    base = serve_app(ViewerApp(load_runs([tmp_path / "c.jsonl"]))).rstrip("/")
    with pytest.raises(AssertionError, match="404"):
        http_get(base + "/api/live/0")


def http_get(url: str, raw: bool = False):
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("GET", u.path + ("?" + u.query if u.query else ""))
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    assert resp.status == 200, f"{url}: {resp.status}"
    return body if raw else body.decode()


def test_the_timeline_grows_in_the_browser(live_run, serve_app, page):
    url = serve_app(ViewerApp(load_runs([live_run])))
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    page.click("#list .item:has(.vid:text-is('live'))")
    page.wait_for_selector("#detail .kf-card")
    first = page.locator("#detail .kf-card").count()
    page.wait_for_function(
        f"document.querySelectorAll('#detail .kf-card').length > {first}", timeout=20000
    )
    page.wait_for_function(
        "[...document.querySelectorAll('#detail .kf-card img')]"
        ".every(i => i.complete && i.naturalWidth > 0)",
        timeout=10000,
    )
    assert page.errors == []
