"""The blind review: pairing, stable blind sides, keyboard voting into SQLite, resume."""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from collections import Counter

import pytest

from diffcap.errors import ConfigError
from diffcap.store.votes import VoteStore
from diffcap.web.data import load_runs
from diffcap.web.review import ReviewApp, build_items, left_system
from support.web_runs import video, write_captions_jsonl, write_run_dir

VIDEOS = ["v1", "v2", "v3"]


@pytest.fixture(scope="module")
def run_paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("review")
    paths = []
    for name in ("sysalpha", "sysbeta"):
        recs = [video(v, [0.0, 1.0, 2.5], 3.0, summary=f"{name} says {v}") for v in VIDEOS]
        if name == "sysbeta":
            recs.append(video("only_beta", [0.0], 1.0))  # not shared: never reviewed
        paths.append(write_run_dir(root / name, recs))
    gamma = [video(v, [0.0, 2.0], 3.0, summary=f"sysgamma says {v}") for v in VIDEOS[:2]]
    paths.append(write_captions_jsonl(root / "sysgamma.jsonl", gamma))
    return paths


def _json(url, data=None):
    req = urllib.request.Request(
        url,
        data=json.dumps(data).encode() if data else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read().decode()


def test_items_are_pairwise_over_shared_videos(run_paths):
    items = build_items(load_runs(run_paths))
    pairs = Counter((it.system_a, it.system_b) for it in items)
    assert pairs == {
        ("sysalpha", "sysbeta"): 3,
        ("sysalpha", "sysgamma"): 2,
        ("sysbeta", "sysgamma"): 2,
    }
    with pytest.raises(ConfigError, match="at least two"):
        build_items(load_runs(run_paths[:1]))


def test_sides_are_stable_per_reviewer_and_balanced():
    from diffcap.web.review import ReviewItem

    items = [ReviewItem(f"v{i}", "a", "b") for i in range(400)]
    sides = [left_system("ann", it) for it in items]
    assert sides == [left_system("ann", it) for it in items]  # a reload shows the same order
    assert 150 < sides.count("a") < 250  # random, not always one side
    assert sides != [left_system("bob", it) for it in items]


def test_responses_never_name_a_system(run_paths, serve_app, tmp_path):
    store = VoteStore(tmp_path / "votes.sqlite")
    url = serve_app(ReviewApp(load_runs(run_paths), store, reviewer="ann"))
    seen = []
    for _ in range(7):
        body = _json(url + "api/review/next?reviewer=ann")
        seen.append(body)
        nxt = json.loads(body)
        assert not nxt["done"]
        assert all(k["src"].startswith("/api/review/kf/" + nxt["item"]) for k in nxt["keyframes"])
        seen.append(
            _json(
                url + "api/review/vote", {"reviewer": "ann", "item": nxt["item"], "choice": "tie"}
            )
        )
    done = json.loads(_json(url + "api/review/next?reviewer=ann"))
    assert done == {"done": True, "progress": {"voted": 7, "total": 7}}
    seen.append(_json(url))
    for text in seen:
        assert "sysalpha" not in text.replace("sysalpha says", "")  # captions quote themselves
        for name in ("sysbeta", "sysgamma", "runs", "records"):
            assert name not in text.replace(f"{name} says", "")
    assert len(store.votes()) == 7


def _db_votes(path):
    conn = sqlite3.connect(path)
    rows = conn.execute(
        "SELECT reviewer, video_id, system_a, system_b, left_system, choice,"
        " winner FROM votes ORDER BY id"
    ).fetchall()
    conn.close()
    return rows


def test_keyboard_votes_are_stored_and_resume_skips_them(run_paths, serve_app, page, tmp_path):
    db = tmp_path / "votes.sqlite"
    runs = load_runs(run_paths[:2])
    url = serve_app(ReviewApp(runs, VoteStore(db), reviewer="ann"))
    page.goto(url)
    page.wait_for_selector("#caption-left .text")
    assert page.locator("#progress").inner_text() == "0 / 3 done"
    assert page.locator(".strip img").count() == 3
    shown = []
    for key, choice in (("1", "left"), ("ArrowRight", "right")):
        item = page.evaluate("document.body.dataset.item")
        left_text = page.locator("#caption-left .text").inner_text()
        right_text = page.locator("#caption-right .text").inner_text()
        body = page.inner_text("body")
        assert "sysbeta" not in body.replace("sysbeta says", "")
        shown.append((left_text, right_text, choice))
        page.keyboard.press(key)
        page.wait_for_function(f"document.body.dataset.item !== {json.dumps(item)}")
    rows = _db_votes(db)
    assert len(rows) == 2
    for (left_text, right_text, choice), row in zip(shown, rows, strict=True):
        reviewer, vid, a, b, left, ch, winner = row
        assert (reviewer, a, b, ch) == ("ann", "sysalpha", "sysbeta", choice)
        assert left_text == f"{left} says {vid}"  # the stored left system is what was shown
        picked = left_text if choice == "left" else right_text
        assert picked == f"{winner} says {vid}"
    assert page.locator("#progress").inner_text() == "2 / 3 done"
    remaining = page.locator("#caption-left .text").inner_text().split(" says ")[1]

    # a reload (or a restarted server) resumes at the unvoted item, same sides
    before = page.locator("#caption-left .text").inner_text()
    page.reload()
    page.wait_for_selector("#caption-left .text")
    assert page.locator("#caption-left .text").inner_text() == before
    assert page.locator("#progress").inner_text() == "2 / 3 done"
    url2 = serve_app(ReviewApp(load_runs(run_paths[:2]), VoteStore(db), reviewer="ann"))
    page.goto(url2)
    page.wait_for_selector("#caption-left .text")
    assert page.locator("#caption-left .text").inner_text().split(" says ")[1] == remaining
    page.keyboard.press("ArrowDown")
    page.wait_for_selector(".done")
    assert page.locator("#progress").inner_text() == "3 / 3 done"
    assert [r[5] for r in _db_votes(db)] == ["left", "right", "tie"]
    # another reviewer starts from zero
    page.goto(url2 + "?reviewer=bob")
    page.wait_for_selector("#caption-left .text")
    assert page.locator("#progress").inner_text() == "0 / 3 done"
    assert page.errors == []


def test_bad_votes_are_refused(run_paths, serve_app, tmp_path):
    url = serve_app(ReviewApp(load_runs(run_paths[:2]), VoteStore(tmp_path / "v.sqlite")))
    for payload in (
        {"reviewer": "a", "item": "nope", "choice": "left"},
        {"reviewer": "", "item": "x", "choice": "left"},
        ["x"],
    ):
        with pytest.raises(urllib.error.HTTPError) as info:
            _json(url + "api/review/vote", payload)
        assert info.value.code == 400


def test_review_page_shows_markup_in_captions_as_text(tmp_path, serve_app, page):
    xss = '<img src=x onerror="window.__pwned = 1"><script>window.__pwned = 2</script>'
    a = write_run_dir(tmp_path / "a", [video("v", [0.0], 1.0, summary=xss)])
    b = write_run_dir(tmp_path / "b", [video("v", [0.0], 1.0, summary="plain </script>")])
    url = serve_app(ReviewApp(load_runs([a, b]), VoteStore(tmp_path / "v.sqlite")))
    page.goto(url)
    page.wait_for_selector("#caption-left .text")
    page.wait_for_timeout(100)
    texts = {page.locator(f"#caption-{s} .text").inner_text() for s in ("left", "right")}
    assert texts == {xss, "plain </script>"}
    assert page.evaluate("window.__pwned") is None


def test_browser_votes_from_another_origin_or_host_are_refused(
    run_paths, serve_app, page, tmp_path
):
    db = tmp_path / "votes.sqlite"
    app = ReviewApp(load_runs(run_paths[:2]), VoteStore(db), reviewer="ann")
    url = serve_app(app)
    port = url.split(":")[2].rstrip("/")
    token = next(iter(app.tokens))
    # a page of another origin (localhost vs 127.0.0.1: another origin, same server) posts a
    # vote as a "simple" text/plain request, which needs no preflight
    page.goto(f"http://localhost:{port}/")
    page.wait_for_selector("#caption-left .text")
    status = page.evaluate(
        """async ([target, body]) => {
            try {
                const r = await fetch(target, {method: "POST", mode: "no-cors", body: body,
                                               headers: {"Content-Type": "text/plain"}});
                return r.type;
            } catch (e) { return "blocked"; }
        }""",
        [f"{url}api/review/vote", json.dumps({"reviewer": "ann", "item": token, "choice": "left"})],
    )
    assert status in ("opaque", "blocked")
    assert _db_votes(db) == []
    # DNS rebinding: a name that resolves to 127.0.0.1 gets no page at all
    resp = page.goto(f"http://rebind.test:{port}/")
    assert resp.status == 400 and "host not allowed" in page.inner_text("body")
    # the page's own origin votes fine (its fetch sends a matching Origin)
    page.goto(url)
    page.wait_for_selector("#caption-left .text")
    page.keyboard.press("1")
    page.wait_for_selector("#progress:text-is('1 / 3 done')")
    assert len(_db_votes(db)) == 1


def test_review_serves_only_registered_videos_with_ranges(tmp_path, serve_app):
    from support.web_runs import register_videos, write_mp4

    mp4 = write_mp4(tmp_path / "clip.mp4", seconds=1.0)
    a = write_run_dir(tmp_path / "a", [video("v", [0.0], 1.0, video_path="/etc/passwd")])
    b = write_run_dir(tmp_path / "b", [video("v", [0.0], 1.0, video_path="/etc/passwd")])
    app = ReviewApp(load_runs([a, b]), VoteStore(tmp_path / "v.sqlite"))
    url = serve_app(app)
    token = next(iter(app.tokens))
    nxt = json.loads(_json(url + "api/review/next"))
    assert nxt["media"] is None
    with pytest.raises(urllib.error.HTTPError) as info:
        _json(f"{url}api/review/video/{token}")
    assert info.value.code == 404
    register_videos(b, {"v": str(mp4)})
    app = ReviewApp(load_runs([a, b]), VoteStore(tmp_path / "v.sqlite"))
    url = serve_app(app)
    token = next(iter(app.tokens))
    assert json.loads(_json(url + "api/review/next"))["media"] == f"/api/review/video/{token}"
    req = urllib.request.Request(f"{url}api/review/video/{token}", headers={"Range": "bytes=0-9"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 206 and r.read() == mp4.read_bytes()[:10]
