"""The viewer server over plain HTTP: containment, Range requests, API, headers, binding."""

from __future__ import annotations

import http.client
import json
import logging
import os
from urllib.parse import urlsplit

import pytest

from diffcap.web.data import load_runs
from diffcap.web.server import make_server, parse_range
from diffcap.web.viewer import ViewerApp
from support.web_runs import video, write_captions_jsonl, write_mp4, write_run_dir


@pytest.fixture
def served(tmp_path, serve_app):
    mp4 = write_mp4(tmp_path / "clip.mp4", seconds=2.0)
    prov = {
        "backend": "openai",
        "model": "gpt-4o",
        "api_key": "sk-abcdefghijklmnopqrstuvwx",
        "api_base": "https://user:hunter2@example.com/v1",
        "headers": {"Authorization": "x"},
    }
    write_run_dir(
        tmp_path / "run", [video("v1", [0.0, 1.0], 2.0, video_path=str(mp4), provenance=prov)]
    )
    (tmp_path / "secret.txt").write_text("top secret")
    (tmp_path / "run" / "notes.txt").write_text("inside but not a keyframe")
    # a symlink inside the run that points outside it, named like a keyframe the record lists
    link_dir = tmp_path / "run" / "keyframes" / "v1"
    os.symlink(tmp_path / "secret.txt", link_dir / "leak.jpg")
    rec_file = tmp_path / "run" / "records" / "records-00000.jsonl"
    rec = json.loads(rec_file.read_text())
    rec["keyframes"].append({"idx": 2, "time": 1.5, "file": "../keyframes/v1/leak.jpg"})
    rec_file.write_text(json.dumps(rec) + "\n")
    url = serve_app(ViewerApp(load_runs([tmp_path / "run"])))
    return urlsplit(url), mp4


def _get(u, path, headers=None):
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("GET", path, headers=headers or {})  # sent verbatim: no client normalisation
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, dict(r.getheaders()), body


@pytest.mark.parametrize(
    "path",
    [
        "/files/0/../secret.txt",
        "/files/0/..%2Fsecret.txt",
        "/files/0/%2e%2e/secret.txt",
        "/files/0/%2E%2E%2Fsecret.txt",
        "/files/0/keyframes/..%2F..%2Fsecret.txt",
        "/files/0//etc/passwd",
        "/files/0/%2Fetc%2Fpasswd",
        "/files/0/..%5Csecret.txt",
        "/files/0/keyframes/v1/leak.jpg",  # symlink to a file outside the run
    ],
)
def test_paths_outside_the_run_are_refused(served, path):
    status, _, body = _get(served[0], path)
    assert status == 403
    assert b"top secret" not in body


def test_files_inside_the_run_but_not_keyframes_are_not_served(served):
    assert _get(served[0], "/files/0/notes.txt")[0] == 404
    assert _get(served[0], "/files/0/records/records-00000.jsonl")[0] == 404
    assert _get(served[0], "/files/7/keyframes/v1/00000_00000.000.jpg")[0] == 404


def test_keyframes_and_api(served):
    u = served[0]
    status, headers, listing = _get(u, "/api/videos")
    assert status == 200
    item = json.loads(listing)["items"][0]
    detail = json.loads(_get(u, f"/api/videos/{item['key']}")[2])
    src = detail["keyframes"][0]["src"]
    status, headers, body = _get(u, src)
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and body[:2] == b"\xff\xd8"
    assert [k["time"] for k in detail["keyframes"]][:2] == [0.0, 1.0]


def test_api_keys_never_reach_the_page(served):
    body = _get(served[0], "/api/videos/0")[2].decode()
    assert "sk-abcdefghijklmnopqrstuvwx" not in body and "hunter2" not in body
    prov = json.loads(body)["provenance"]
    assert prov["api_key"] == "[redacted]" and prov["headers"]["Authorization"] == "[redacted]"
    assert prov["model"] == "gpt-4o"


def test_page_headers_forbid_inline_scripts(served):
    status, headers, body = _get(served[0], "/")
    assert status == 200 and b'<script src="/static/viewer.js">' in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert _get(served[0], "/static/viewer.js")[0] == 200
    assert _get(served[0], "/static/..%2Fserver.py")[0] == 404


def test_video_range_requests(served):
    u, mp4 = served
    data = mp4.read_bytes()
    status, headers, body = _get(u, "/media/0")
    assert status == 200 and body == data and headers["Accept-Ranges"] == "bytes"
    status, headers, body = _get(u, "/media/0", {"Range": "bytes=10-99"})
    assert status == 206 and body == data[10:100]
    assert headers["Content-Range"] == f"bytes 10-99/{len(data)}"
    status, _, body = _get(u, "/media/0", {"Range": "bytes=-16"})
    assert status == 206 and body == data[-16:]
    status, _, body = _get(u, "/media/0", {"Range": f"bytes={len(data) - 5}-"})
    assert status == 206 and body == data[-5:]
    status, headers, _ = _get(u, "/media/0", {"Range": f"bytes={len(data)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(data)}"
    assert _get(u, "/media/9")[0] == 404


def test_parse_range():
    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-0", 100) == (0, 0)
    assert parse_range("bytes=90-200", 100) == (90, 99)
    assert parse_range("bytes=5-2", 100) == "bad"
    assert parse_range("bytes=0-1,5-6", 100) == "bad"
    assert parse_range("items=0-1", 100) == "bad"


def test_captions_jsonl_layout_is_served(tmp_path, serve_app):
    path = write_captions_jsonl(tmp_path / "captions.jsonl", [video("c1", [0.0, 4.0], 5.0)])
    u = urlsplit(serve_app(ViewerApp(load_runs([path]))))
    detail = json.loads(_get(u, "/api/videos/0")[2])
    assert detail["keyframes"][1]["src"] == "/files/0/captions.keyframes/c1/00001_00004.000.jpg"
    assert _get(u, detail["keyframes"][1]["src"])[0] == 200


def test_keyframe_names_with_url_characters(tmp_path, serve_app):
    rec = video("odd id", [0.0], 1.0)
    path = write_captions_jsonl(tmp_path / "c.jsonl", [rec])
    src_dir = tmp_path / "c.keyframes" / "odd id"
    (src_dir / "00000_00000.000.jpg").rename(src_dir / "a b#1?.jpg")
    rec["keyframes"][0]["file"] = "c.keyframes/odd id/a b#1?.jpg"
    path.write_text(json.dumps(rec) + "\n")
    u = urlsplit(serve_app(ViewerApp(load_runs([path]))))
    src = json.loads(_get(u, "/api/videos/0")[2])["keyframes"][0]["src"]
    status, _, body = _get(u, src)
    assert status == 200 and body[:2] == b"\xff\xd8"


def test_binding_beyond_loopback_warns(tmp_path, caplog):
    run = write_run_dir(tmp_path / "run", [video("v1", [0.0], 1.0)])
    with caplog.at_level(logging.WARNING, logger="diffcap"):
        server = make_server(ViewerApp(load_runs([run])), "0.0.0.0", 0)
    server.server_close()
    assert any("binding to 0.0.0.0" in r.getMessage() for r in caplog.records)
    with caplog.at_level(logging.WARNING, logger="diffcap"):
        caplog.clear()
        make_server(ViewerApp(load_runs([run])), "127.0.0.1", 0).server_close()
    assert not caplog.records
