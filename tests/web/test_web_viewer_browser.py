"""The viewer and the static report in headless Chromium: timeline, escaping, search, play,
pages of the list, and the report under its own Content-Security-Policy."""

from __future__ import annotations

import pytest

from diffcap.web.data import load_runs
from diffcap.web.report import write_report
from diffcap.web.viewer import ViewerApp
from support.web_runs import register_videos, video, write_mp4, write_run_dir

XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
TIMES = [0.0, 1.5, 2.0, 6.25, 9.5]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("viewer")
    mp4 = write_mp4(root / "media" / "clip.mp4", seconds=4.0)
    a = [
        video(
            "alpha",
            TIMES,
            10.0,
            video_path=str(mp4),
            summary="A red ball rolls.",
            clips=[{"start": 0.0, "end": 2.0, "content": "the ball starts"}],
        ),
        video(
            "bravo",
            [0.0, 3.0],
            4.0,
            summary=XSS,
            captions=[XSS, "plain"],
            mode="fast",
            model="local-llava",
        ),
        video("playable", [0.0, 1.0, 3.0], 4.0, video_path=str(mp4), summary="moving bar"),
    ]
    write_run_dir(
        root / "runA",
        a,
        failures=[
            {
                "video_id": "broken",
                "video_path": "/x/broken.mp4",
                "stage": "keyframes",
                "reason": "corrupt",
                "message": "bad frame",
            }
        ],
        filtered=[
            {
                "video_id": "dupe",
                "video_path": "/x/dupe.mp4",
                "stage": "dedup",
                "reason": "duplicate",
                "message": "near alpha",
            }
        ],
    )
    register_videos(root / "runA", {"alpha": str(mp4), "playable": str(mp4), "bravo": "/x.mp4"})
    return load_runs([root / "runA"]), root


def _open(page, url):
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")


def _select(page, video_id):
    page.click(f"#list .item:has(.vid:text-is('{video_id}'))")
    page.wait_for_selector(f"#detail .title:text-is('{video_id}')")


def _check_timeline(page, times, duration):
    markers = page.locator("#detail .kf-marker")
    assert markers.count() == len(times)
    axis = page.locator("#detail .axis").bounding_box()
    for i, t in enumerate(times):
        box = markers.nth(i).bounding_box()
        centre = box["x"] + box["width"] / 2 - axis["x"]
        assert float(markers.nth(i).get_attribute("data-time")) == pytest.approx(t)
        assert centre == pytest.approx(t / duration * axis["width"], abs=1.5)
    assert page.locator("#detail .kf-card").count() == len(times)


def test_timeline_places_keyframes_at_their_times(runs, serve_app, page):
    url = serve_app(ViewerApp(runs[0]))
    _open(page, url)
    _select(page, "alpha")
    _check_timeline(page, TIMES, 10.0)
    cards = page.locator("#detail .kf-card")
    assert cards.nth(3).locator(".kf-time").inner_text() == "00:06.25"
    assert cards.nth(3).locator(".kf-caption").inner_text() == "alpha caption 3 at 6.25s"
    # every thumbnail loaded from the server
    widths = page.eval_on_selector_all(
        "#detail .kf-card img", "els => els.map(e => e.naturalWidth)"
    )
    assert len(widths) == len(TIMES) and all(w > 0 for w in widths)
    assert page.locator("#detail .summary").inner_text() == "A red ball rolls."
    assert "the ball starts" in page.locator("#detail .clips").inner_text()
    assert '"cost_usd": 0.0123' in page.locator("#detail .usage").inner_text()
    assert page.errors == []


def test_caption_with_script_is_text_and_runs_nothing(runs, serve_app, page):
    url = serve_app(ViewerApp(runs[0]))
    _open(page, url)
    _select(page, "bravo")
    page.wait_for_timeout(200)  # give any injected handler (onerror) a chance to fire
    assert page.locator("#detail .summary").inner_text() == XSS
    assert page.locator("#detail .kf-caption").first.inner_text() == XSS
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#detail script, #detail img[src='x']").count() == 0


def test_search_and_filters(runs, serve_app, page):
    url = serve_app(ViewerApp(runs[0]))
    _open(page, url)
    ids = lambda: page.locator("#list .item .vid").all_inner_texts()  # noqa: E731
    assert sorted(ids()) == ["alpha", "bravo", "broken", "dupe", "playable"]
    page.fill("#q", "RED BALL")  # caption text, case-insensitive
    page.wait_for_function("document.querySelectorAll('#list .item').length === 1")
    assert ids() == ["alpha"]
    page.fill("#q", "brav")  # video id
    page.wait_for_function("document.querySelector('#list .item .vid').textContent === 'bravo'")
    assert ids() == ["bravo"]
    page.fill("#q", "")
    page.wait_for_function("document.querySelectorAll('#list .item').length === 5")
    page.select_option("#f-status", "failed")
    page.wait_for_function("document.querySelectorAll('#list .item').length === 1")
    assert ids() == ["broken"]
    page.select_option("#f-status", "filtered")
    page.wait_for_function("document.querySelector('#list .item .vid').textContent === 'dupe'")
    page.select_option("#f-status", "")
    page.select_option("#f-mode", "fast")
    page.wait_for_function("document.querySelectorAll('#list .item').length === 1")
    assert ids() == ["bravo"]
    page.select_option("#f-mode", "")
    page.select_option("#f-model", "gpt-4o")
    page.wait_for_function("document.querySelectorAll('#list .item').length === 2")
    assert sorted(ids()) == ["alpha", "playable"]
    _select(page, "alpha")
    page.select_option("#f-model", "")
    page.select_option("#f-status", "failed")
    page.wait_for_function("document.querySelectorAll('#list .item').length === 1")
    _select(page, "broken")
    assert "keyframes: corrupt — bad frame" in page.locator("#detail .note").inner_text()


def test_clicking_a_keyframe_plays_the_video_from_its_time(runs, serve_app, page):
    url = serve_app(ViewerApp(runs[0]))
    _open(page, url)
    _select(page, "playable")
    page.wait_for_function("document.querySelector('video.player').readyState >= 1", timeout=10000)
    if page.evaluate("document.querySelector('video.player').error") is not None:
        pytest.skip("this Chromium build cannot decode H.264")
    page.locator("#detail .kf-marker").nth(2).click()
    page.wait_for_function("document.querySelector('video.player').currentTime >= 2.9")
    t = page.evaluate("document.querySelector('video.player').currentTime")
    assert 2.9 <= t < 4.0
    page.locator("#detail .kf-card").nth(1).click()
    page.wait_for_function(
        "Math.abs(document.querySelector('video.player').currentTime - 1.0) < 0.5"
    )


def _until(page, expression, timeout=10.0):
    """Poll ``expression`` from outside the page (Playwright's wait_for_function evaluates its
    predicate inside the page, which a strict CSP forbids)."""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(50)


def _no_network(page):
    requests = []
    page.context.route(
        "**/*",
        lambda route: (
            requests.append(route.request.url),
            route.continue_() if route.request.url.startswith("file:") else route.abort(),
        ),
    )
    return requests


def test_static_report_renders_offline_under_its_csp(runs, tmp_path, strict_page):
    page = strict_page
    out = write_report(runs[0], tmp_path / "report.html", quiet=True)
    html = out.read_text()
    assert "<script>window.__pwned" not in html  # the JSON is escaped against </script>
    requests = _no_network(page)
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ready='1'][data-loaded='1']")
    assert all(u.startswith("file:") for u in requests)  # nothing fetched from a network
    _select(page, "alpha")
    _check_timeline(page, TIMES, 10.0)
    srcs = page.eval_on_selector_all("#detail .kf-card img", "els => els.map(e => e.src)")
    kf_dir = (runs[1] / "runA" / "keyframes" / "alpha").as_uri()
    assert len(srcs) == len(TIMES) and all(s.startswith(kf_dir) for s in srcs)
    _until(
        page,
        "[...document.querySelectorAll('#detail .kf-card img')].every(i => i.naturalWidth > 0)",
    )
    assert page.locator("#detail a.file-link").get_attribute("href").startswith("file:///")
    page.fill("#q", "<SCRIPT>")  # local search in the report: matches bravo's captions only
    _until(page, "document.querySelectorAll('#list .item').length === 1")
    _select(page, "bravo")
    page.wait_for_timeout(100)
    assert page.locator("#detail .summary").inner_text() == XSS
    assert page.evaluate("window.__pwned") is None
    assert page.errors == [] and page.csp == []


def test_static_report_thumbnails_beside_the_html(runs, tmp_path, strict_page):
    page = strict_page
    out = write_report(runs[0], tmp_path / "r" / "index.html", thumb_side=32, quiet=True)
    thumbs = sorted((tmp_path / "r" / "index_files" / "thumbs").glob("*.jpg"))
    assert len(thumbs) == len(TIMES) + 2 + 3  # every keyframe of alpha, bravo, playable
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ready='1']")
    _select(page, "alpha")
    _until(
        page,
        "[...document.querySelectorAll('#detail .kf-card img')].every(i => i.naturalWidth > 0)",
    )
    widths = page.eval_on_selector_all(
        "#detail .kf-card img", "els => els.map(e => [e.naturalWidth, e.src])"
    )
    assert all(w <= 32 and "/index_files/thumbs/" in s for w, s in widths)
    assert page.errors == [] and page.csp == []


@pytest.fixture(scope="module")
def big_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("big")
    recs = [video(f"v{i:04d}", [0.0], 1.0, summary=f"clip number {i}") for i in range(2500)]
    return load_runs([write_run_dir(root / "big", recs)])


def _page_info(page):
    return page.locator("#page-info").inner_text()


def test_served_list_is_paged(big_run, serve_app, page):
    _open(page, serve_app(ViewerApp(big_run)))
    assert page.locator("#list .item").count() == 100
    assert _page_info(page) == "1–100 of 2500"
    assert page.locator("#prev").is_disabled()
    page.click("#next")
    page.wait_for_function("document.getElementById('page-info').textContent.startsWith('101')")
    assert page.locator("#list .item .vid").first.inner_text() == "v0100"
    page.fill("#q", "number 24")  # 24, 240-249, 2400-2499: 111 hits, searched by the server
    page.wait_for_function("document.getElementById('page-info').textContent === '1–100 of 111'")
    page.click("#next")
    page.wait_for_function("document.getElementById('page-info').textContent === '101–111 of 111'")
    assert page.locator("#list .item").count() == 11 and page.locator("#next").is_disabled()
    assert page.errors == []


def test_static_list_is_paged_over_data_files(big_run, tmp_path, strict_page):
    page = strict_page
    out = write_report(big_run, tmp_path / "big.html", quiet=True)
    assert len(list((tmp_path / "big_files").glob("data-*.js"))) == 3
    page.goto(out.as_uri() + "#v=2345")  # a deep link into the last data file
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_selector("#detail .title:text-is('v2345')")
    page.wait_for_selector("body[data-loaded='1']")
    _until(page, "document.getElementById('page-info').textContent === '1–100 of 2500'")
    assert page.locator("#list .item").count() == 100
    page.fill("#q", "number 2499")
    _until(page, "document.getElementById('page-info').textContent === '1–1 of 1'")
    _select(page, "v2499")
    assert page.errors == [] and page.csp == []
