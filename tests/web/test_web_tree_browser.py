"""The summary tree in the viewer (headless Chromium): levels nested under the root's text,
citations as buttons that seek the player, hostile trees shown as text, and a long
timeline (1,500 keyframes) drawn in linear time."""

from __future__ import annotations

import re
import time

import pytest

from diffcap.web.data import load_runs
from diffcap.web.report import write_report
from diffcap.web.viewer import ViewerApp
from support.web_runs import register_videos, video, write_mp4, write_run_dir

ROOT_TEXT = "A bar sweeps [00:00–00:06], then a second pass [00:07–00:09] ends it."


CLOCK = re.compile(r"\[(\d\d):(\d\d)(?:–(\d\d):(\d\d))?\]")


def _cites(content):
    """The citation list the tree writer would give for ``[mm:ss]`` / ``[mm:ss–mm:ss]``."""
    out = []
    for m in CLOCK.finditer(content):
        start = int(m[1]) * 60 + int(m[2])
        end = int(m[3]) * 60 + int(m[4]) if m[3] else start
        out.append({"text": m[0], "start": float(start), "end": float(end)})
    return out


def _node(nid, level, start, end, content, children, citations=None):
    return {
        "id": nid,
        "level": level,
        "start": start,
        "end": end,
        "content": content,
        "children": children,
        "citations": _cites(content) if citations is None else citations,
    }


def three_level_tree():
    """A 12 s video: four level-1 nodes over 3 s each, two level-2 nodes, the root."""
    return {
        "levels": 3,
        "nodes": [
            _node("1.0", 1, 0.0, 3.0, "Dark frame [00:01].", ["0", "1"]),
            _node("1.1", 1, 3.0, 6.0, "The bar moves [00:04–00:05].", ["2"]),
            _node("1.2", 1, 6.0, 9.0, "Brighter [00:07–00:08].", ["3"]),
            _node("1.3", 1, 9.0, 12.0, "Last frames.", ["4", "5"]),
            _node("2.0", 2, 0.0, 6.0, "First half [00:04–00:05].", ["1.0", "1.1"]),
            _node("2.1", 2, 6.0, 12.0, "Second half [00:10].", ["1.2", "1.3"]),
            _node("-1", 3, 0.0, 12.0, ROOT_TEXT, ["2.0", "2.1"]),
        ],
    }


HOSTILE = '<img src=x onerror="window.__pwned = 1">'
BAD_CITE = '[<b onmouseover="window.__pwned = 2">00:02</b>]'
BAD_ID = '"><script>window.__pwned = 3</script>'


def hostile_tree():
    cites = [{"text": BAD_CITE, "start": 2.0, "end": 3.0}]
    text = f"{HOSTILE} then {BAD_CITE} and </summary></details><i>x</i>"
    return {
        "levels": 2,
        "nodes": [
            _node(BAD_ID, 1, 0.0, 4.0, text, ["0"], cites),
            _node("-1", 2, 0.0, 4.0, f"Root {HOSTILE} {BAD_CITE}", [BAD_ID], cites),
        ],
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree")
    mp4 = write_mp4(root / "media" / "twelve.mp4", seconds=12.0, fps=5)
    times = [0.0, 2.0, 4.0, 7.0, 9.0, 11.0]
    tree = video("tree", times, 12.0, video_path=str(mp4), summary=ROOT_TEXT)
    tree["summary_tree"] = three_level_tree()
    hostile = video("hostile", [0.0, 2.0], 4.0, summary=f"Root {HOSTILE} {BAD_CITE}")
    hostile["summary_tree"] = hostile_tree()
    plain = video("plain", [0.0, 1.0], 2.0, summary="no tree here [00:01]")
    write_run_dir(root / "run", [tree, hostile, plain])
    register_videos(root / "run", {"tree": str(mp4)})
    return load_runs([root / "run"])


def _open(page, url, video_id):
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    page.click(f"#list .item:has(.vid:text-is('{video_id}'))")
    page.wait_for_selector(f"#detail .title:text-is('{video_id}')")


def _levels(page):
    return page.eval_on_selector_all(
        "#detail .tree-node", "els => els.map(e => [e.dataset.id, e.dataset.level, e.tagName])"
    )


def test_tree_is_shown_nested_under_the_root_text(runs, serve_app, page):
    _open(page, serve_app(ViewerApp(runs)), "tree")
    assert page.locator("#detail .summary").inner_text() == ROOT_TEXT
    assert _levels(page) == [
        ["2.0", "2", "DETAILS"],
        ["1.0", "1", "DIV"],
        ["1.1", "1", "DIV"],
        ["2.1", "2", "DETAILS"],
        ["1.2", "1", "DIV"],
        ["1.3", "1", "DIV"],
    ]
    second = page.locator("#detail details.tree-node[data-id='2.1']")
    assert second.locator(":scope > .tree-head .tree-range").inner_text() == "00:06–00:12"
    assert second.locator(":scope > .tree-head .tree-text").inner_text() == "Second half [00:10]."
    leaf = page.locator("#detail .tree-node[data-id='1.3']")
    assert leaf.locator(".tree-count").inner_text() == "2 captions"
    cites = page.eval_on_selector_all(
        "#detail .summary .cite", "els => els.map(e => [e.textContent, Number(e.dataset.time)])"
    )
    assert cites == [["[00:00–00:06]", 0.0], ["[00:07–00:09]", 7.0]]
    # the levels fold: closing the second half hides its level-1 nodes
    assert page.locator("#detail .tree-node[data-id='1.2']").is_visible()
    second.locator(":scope > summary").click(position={"x": 2, "y": 5})
    assert not page.locator("#detail .tree-node[data-id='1.2']").is_visible()
    assert page.errors == []


def _seeked(page, t):
    page.wait_for_function(
        f"Math.abs(document.querySelector('video.player').currentTime - {t}) < 0.3", timeout=10000
    )


def test_citations_and_ranges_seek_the_player(runs, serve_app, page):
    _open(page, serve_app(ViewerApp(runs)), "tree")
    page.wait_for_function("document.querySelector('video.player').readyState >= 1", timeout=10000)
    if page.evaluate("document.querySelector('video.player').error") is not None:
        pytest.skip("this Chromium build cannot decode H.264")
    page.locator("#detail .summary .cite", has_text="[00:07–00:09]").click()
    _seeked(page, 7.0)
    page.locator("#detail .tree-node[data-id='1.1'] .cite").click()
    _seeked(page, 4.0)
    page.locator("#detail .tree-node[data-id='2.1'] > summary .cite").click()
    _seeked(page, 10.0)
    # a level-1 range seeks to its start; a range inside <summary> does not fold its level
    page.locator("#detail .tree-node[data-id='1.3'] .tree-range").click()
    _seeked(page, 9.0)
    page.locator("#detail .tree-node[data-id='2.0'] > summary .tree-range").click()
    _seeked(page, 0.0)
    assert page.locator("#detail .tree-node[data-id='1.0']").is_visible()
    assert page.errors == []


def test_hostile_tree_is_text_and_injects_nothing(runs, serve_app, page):
    _open(page, serve_app(ViewerApp(runs)), "hostile")
    page.wait_for_timeout(200)  # give an injected onerror a chance to fire
    detail = page.locator("#detail")
    assert detail.locator(".summary").inner_text() == f"Root {HOSTILE} {BAD_CITE}"
    node = detail.locator(".tree-node").first
    assert node.get_attribute("data-id") == BAD_ID
    assert node.locator(".tree-text").inner_text() == (
        f"{HOSTILE} then {BAD_CITE} and </summary></details><i>x</i>"
    )
    cite = node.locator(".cite")
    assert cite.inner_text() == BAD_CITE and cite.get_attribute("data-time") == "2"
    cite.hover()
    assert detail.locator(".summary-tree").locator("img, script, b, i").count() == 0
    assert detail.locator("img[src='x'], script").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert page.errors == []


def test_record_without_tree_renders_as_before(runs, serve_app, page):
    _open(page, serve_app(ViewerApp(runs)), "plain")
    assert page.locator("#detail .summary").inner_text() == "no tree here [00:01]"
    assert page.locator("#detail .summary-tree, #detail .tree-node, #detail .cite").count() == 0


def test_static_report_shows_the_tree_under_its_csp(runs, tmp_path, strict_page):
    page = strict_page
    out = write_report(runs, tmp_path / "report.html", quiet=True)
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ready='1'][data-loaded='1']")
    page.click("#list .item:has(.vid:text-is('hostile'))")
    page.wait_for_selector("#detail .title:text-is('hostile')")
    assert page.locator("#detail .tree-node .cite").inner_text() == BAD_CITE
    page.click("#list .item:has(.vid:text-is('tree'))")
    page.wait_for_selector("#detail .title:text-is('tree')")
    assert len(_levels(page)) == 6
    assert page.locator("#detail .summary .cite").count() == 2
    assert page.evaluate("window.__pwned") is None
    assert page.errors == [] and page.csp == []


N_LONG = 1500


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("long")
    times = [i * 2.4 for i in range(N_LONG)]  # one keyframe every 2.4 s: a one-hour video
    rec = video("long", times, 3600.0, summary="an hour")
    kids = lambda i: [str(j) for j in range(i * 25, i * 25 + 25)]  # noqa: E731
    rec["summary_tree"] = {
        "levels": 2,
        "nodes": [
            _node(f"1.{i}", 1, i * 60.0, i * 60.0 + 60, f"minute {i} [{i:02d}:30]", kids(i))
            for i in range(60)
        ]
        + [_node("-1", 2, 0.0, 3600.0, "an hour", [f"1.{i}" for i in range(60)])],
    }
    return load_runs([write_run_dir(root / "run", [rec])])


def _layouts(cdp) -> int:
    metrics = cdp.send("Performance.getMetrics")["metrics"]
    return int(next(m["value"] for m in metrics if m["name"] == "LayoutCount"))


def test_long_timeline_draws_in_linear_time(long_run, serve_app, page):
    page.goto(serve_app(ViewerApp(long_run)))
    page.wait_for_selector("body[data-ready='1']")
    cdp = page.context.new_cdp_session(page)  # Chromium's own count of layouts
    cdp.send("Performance.enable")
    before = _layouts(cdp)
    t0 = time.monotonic()
    page.click("#list .item")
    page.wait_for_selector("#detail .tree-node[data-id='1.59']")
    seconds = time.monotonic() - t0
    layouts = _layouts(cdp) - before
    assert page.locator("#detail .kf-card").count() == N_LONG
    assert page.locator("#detail .kf-marker").count() == N_LONG
    assert page.locator("#detail .tree-node[data-level='1']").count() == 60
    # A layout per marker (reading a size after each write) is quadratic: 1,500 layouts and
    # about 6 s here. Drawn in one pass it is a handful of layouts and about 1 s.
    assert layouts < 20, f"{layouts} layouts to draw {N_LONG} keyframes ({seconds:.1f} s)"
    assert seconds < 15.0
    assert page.errors == []


def test_exported_chapters_load_as_a_chapters_track(runs, tmp_path, page):
    """Chromium's own WebVTT parser reads the chapters export of the tree record."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from diffcap.export import ExportOptions, export

    shard = runs[0].source / "records" / "records-00000.jsonl"
    export(shard, "chapters", tmp_path / "ch", ExportOptions(progress=False))
    (tmp_path / "ch" / "index.html").write_text(
        '<video><track kind="chapters" src="tree.vtt"></video>'
    )

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path / "ch"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
        page.evaluate("document.querySelector('track').track.mode = 'hidden'")
        page.wait_for_function("document.querySelector('track').readyState >= 2")
        assert page.evaluate("document.querySelector('track').readyState") == 2  # not ERROR
        cues = page.evaluate(
            "[...document.querySelector('track').track.cues]"
            ".map(c => [c.startTime, c.endTime, c.text])"
        )
    finally:
        server.shutdown()
    assert cues == [
        [0.0, 3.0, "Dark frame"],
        [3.0, 6.0, "The bar moves"],
        [6.0, 9.0, "Brighter"],
        [9.0, 12.0, "Last frames"],
    ]
