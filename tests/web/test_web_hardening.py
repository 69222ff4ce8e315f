"""The web server against untrusted records and clients: a records file serves only its
keyframe images, malformed votes are 400s (never a 500), and connections that send their
headers only part of the way are closed."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request

import pytest

from diffcap.store.votes import VoteStore
from diffcap.web.data import load_runs
from diffcap.web.review import ReviewApp
from diffcap.web.viewer import ViewerApp
from support.web_runs import video, write_captions_jsonl, write_run_dir


def _status(url: str, data: bytes | None = None) -> int:
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.allow_error_logs  # main logs the 500's traceback; the test asserts the status
def test_view_of_a_records_file_serves_only_its_keyframe_images(tmp_path, serve_app):
    caps = write_captions_jsonl(tmp_path / "caps.jsonl", [video("v", [0.0, 1.0], 2.0)])
    rec = json.loads(caps.read_text())
    good = rec["keyframes"][0]["file"]
    (tmp_path / "notes.txt").write_text("a secret beside the records file")
    (tmp_path / "photo.jpg").write_bytes((tmp_path / good).read_bytes())  # not a keyframe
    (tmp_path / "caps.keyframes" / "v" / "notes.txt").write_text("not an image")
    bad = ["notes.txt", "photo.jpg", "caps.keyframes/v/notes.txt", "../outside.jpg", "/etc/passwd"]
    for i, name in enumerate(bad, start=2):
        rec["keyframes"].append({"idx": i, "time": float(i), "file": name})
    caps.write_text(json.dumps(rec) + "\n")
    url = serve_app(ViewerApp(load_runs([caps])))
    assert _status(f"{url}files/0/{good}") == 200
    for name in bad[:3]:
        assert _status(f"{url}files/0/{name}") in (403, 404), name
    detail = json.loads(urllib.request.urlopen(f"{url}api/videos/0", timeout=10).read())
    sources = [k.get("src") for k in detail["keyframes"]]
    assert sum(s is not None for s in sources) == 2  # the two real keyframes only


@pytest.fixture
def review_url(tmp_path, serve_app):
    runs = [write_run_dir(tmp_path / n, [video("v", [0.0], 1.0, summary=n)]) for n in "ab"]
    return serve_app(ReviewApp(load_runs(runs), VoteStore(tmp_path / "votes.sqlite")))


@pytest.mark.allow_error_logs  # main logs the 500's traceback; the test asserts the status
def test_deeply_nested_or_ill_typed_votes_are_400(review_url):
    item = json.loads(urllib.request.urlopen(f"{review_url}api/review/next", timeout=10).read())
    vote = f"{review_url}api/review/vote"
    deep = b'{"reviewer": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    assert _status(vote, deep) == 400
    for reviewer in (["ann"], {"n": "ann"}, 7):
        body = {"reviewer": reviewer, "item": item["item"], "choice": "left"}
        assert _status(vote, json.dumps(body).encode()) == 400, reviewer
    ok = {"reviewer": "ann", "item": item["item"], "choice": "left"}
    assert _status(vote, json.dumps(ok).encode()) == 200


def test_connections_that_send_headers_partway_are_closed(tmp_path, serve_app):
    run = write_run_dir(tmp_path / "r", [video("v", [0.0], 1.0)])
    url = serve_app(ViewerApp(load_runs([run])), header_timeout_s=0.5)
    host, port = url.split("//")[1].rstrip("/").split(":")
    socks = []
    for _ in range(50):
        s = socket.create_connection((host, int(port)), timeout=5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # and never the rest
        socks.append(s)
    silent = socket.create_connection((host, int(port)), timeout=5)  # sends nothing at all
    socks.append(silent)
    time.sleep(1.5)
    try:
        for s in socks:
            assert s.recv(1024) == b"", "the server kept a half-sent request open"
    finally:
        for s in socks:
            s.close()
    assert _status(url) == 200  # the server still answers whole requests
