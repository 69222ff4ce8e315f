"""The viewer server over plain HTTP: containment, media by registered id, Range requests,
pages of the list, headers and binding."""

from __future__ import annotations

import http.client
import json
import logging
import os
import shutil
from urllib.parse import urlsplit

import pytest

from diffcap.web.data import load_runs
from diffcap.web.server import make_server
from diffcap.web.viewer import ViewerApp
from support.web_runs import (
    register_videos,
    video,
    write_captions_jsonl,
    write_mp4,
    write_run_dir,
)


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
        tmp_path / "run",
        [
            video("v1", [0.0, 1.0], 2.0, video_path=str(mp4), provenance=prov),
            video("v2", [0.0], 1.0, video_path="/etc/passwd"),  # a record naming any file
        ],
    )
    register_videos(tmp_path / "run", {"v1": str(mp4), "v2": "/no/such/v2.mp4"})
    (tmp_path / "secret.txt").write_text("top secret")
    (tmp_path / "run" / "notes.txt").write_text("inside but not a keyframe")
    # a symlink inside the run that points outside it, named like a keyframe the record lists
    link_dir = tmp_path / "run" / "keyframes" / "v1"
    os.symlink(tmp_path / "secret.txt", link_dir / "leak.jpg")
    rec_file = tmp_path / "run" / "records" / "records-00000.jsonl"
    recs = [json.loads(line) for line in rec_file.read_text().splitlines()]
    recs[0]["keyframes"].append({"idx": 2, "time": 1.5, "file": "../keyframes/v1/leak.jpg"})
    rec_file.write_text("".join(json.dumps(r) + "\n" for r in recs))
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
    assert _get(served[0], "/files/0/run.sqlite")[0] == 404
    assert _get(served[0], "/files/7/keyframes/v1/00000_00000.000.jpg")[0] == 404


def test_keyframes_and_api(served):
    u = served[0]
    status, headers, listing = _get(u, "/api/videos")
    assert status == 200
    item = json.loads(listing)["items"][0]
    detail = json.loads(_get(u, f"/api/videos/{item['key']}")[2])
    src = detail["keyframes"][0]["src"]
    status, headers, body = _get(u, src)
    assert status == 200 and headers["content-type"] == "image/jpeg" and body[:2] == b"\xff\xd8"
    assert [k["time"] for k in detail["keyframes"]][:2] == [0.0, 1.0]


def test_a_record_path_never_picks_the_served_file(served):
    u = served[0]
    v2 = json.loads(_get(u, "/api/videos/1")[2])
    assert v2["video_id"] == "v2" and v2["media"] is None  # its registered file is missing
    status, _, body = _get(u, "/media/1")
    assert status == 404 and b"root:" not in body
    assert _get(u, "/media/99")[0] == 404
    assert _get(u, "/media/-1")[0] == 404


def test_api_keys_never_reach_the_page(served):
    body = _get(served[0], "/api/videos/0")[2].decode()
    assert "sk-abcdefghijklmnopqrstuvwx" not in body and "hunter2" not in body
    prov = json.loads(body)["provenance"]
    assert prov["api_key"] == "[redacted]" and prov["headers"]["Authorization"] == "[redacted]"
    assert prov["model"] == "gpt-4o"


def test_page_headers_forbid_inline_scripts(served):
    status, headers, body = _get(served[0], "/")
    assert status == 200 and b'<script src="/static/viewer.js">' in body
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cross-origin-resource-policy"] == "same-origin"
    assert _get(served[0], "/static/viewer.js")[0] == 200
    assert _get(served[0], "/static/..%2Fserver.py")[0] == 404


def test_video_range_requests(served):
    u, mp4 = served
    data = mp4.read_bytes()
    status, headers, body = _get(u, "/media/0")
    assert status == 200 and body == data and headers["accept-ranges"] == "bytes"
    status, headers, body = _get(u, "/media/0", {"Range": "bytes=10-99"})
    assert status == 206 and body == data[10:100]
    assert headers["content-range"] == f"bytes 10-99/{len(data)}"
    status, _, body = _get(u, "/media/0", {"Range": "bytes=-16"})
    assert status == 206 and body == data[-16:]
    status, _, body = _get(u, "/media/0", {"Range": f"bytes={len(data) - 5}-"})
    assert status == 206 and body == data[-5:]
    status, headers, _ = _get(u, "/media/0", {"Range": f"bytes={len(data)}-"})
    assert status == 416 and headers["content-range"] == f"bytes */{len(data)}"
    status, headers, body = _get(u, "/media/0", {"Range": "bytes=0-1,4-5"})
    assert status == 206 and headers["content-type"].startswith("multipart/byteranges")
    assert data[0:2] in body and data[4:6] in body
    assert _get(u, "/media/0", {"Range": "items=0-1"})[0] == 400
    assert _get(u, "/media/0", {"Range": "bytes=5-2"})[0] == 400
    status, headers, body = _get(u, "/media/0", {"Range": "bytes=0-0", "If-Range": '"stale"'})
    assert status == 200 and body == data  # a changed file: the whole file, not a range


def test_list_is_paged_and_filtered_on_the_server(tmp_path, serve_app):
    recs = [video(f"v{i:03d}", [0.0], 1.0, summary=f"clip {i}") for i in range(250)]
    u = urlsplit(serve_app(ViewerApp(load_runs([write_run_dir(tmp_path / "r", recs)]))))
    page = json.loads(_get(u, "/api/videos")[2])
    assert page["total"] == 250 and len(page["items"]) == 100 and page["offset"] == 0
    page = json.loads(_get(u, "/api/videos?offset=200&limit=100")[2])
    assert [i["video_id"] for i in page["items"]] == [f"v{i:03d}" for i in range(200, 250)]
    page = json.loads(_get(u, "/api/videos?q=clip%2024&limit=5")[2])
    assert page["total"] == 11 and len(page["items"]) == 5  # 24, 240..249
    assert len(json.loads(_get(u, "/api/videos?limit=100000")[2])["items"]) == 250  # capped 500
    for bad in ("offset=-1", "limit=abc", "offset=1e3"):
        assert _get(u, f"/api/videos?{bad}")[0] == 400


def test_jsonl_runs_play_only_videos_inside_their_folder(tmp_path, serve_app):
    outside = write_mp4(tmp_path / "elsewhere" / "out.mp4", seconds=1.0)
    inside = write_mp4(tmp_path / "caps" / "media" / "in.mp4", seconds=1.0)
    shutil.copy(inside, tmp_path / "caps" / "media" / "notes.txt")  # video bytes, text name
    recs = [
        video("in", [0.0], 1.0, video_path="media/in.mp4"),
        video("out", [0.0], 1.0, video_path=str(outside)),
        video("passwd", [0.0], 1.0, video_path="/etc/passwd"),
        video("txt", [0.0], 1.0, video_path="media/notes.txt"),  # inside, but not a video
    ]
    path = write_captions_jsonl(tmp_path / "caps" / "captions.jsonl", recs)
    u = urlsplit(serve_app(ViewerApp(load_runs([path]))))
    assert [_get(u, f"/media/{k}")[0] for k in range(4)] == [200, 404, 404, 404]
    u = urlsplit(serve_app(ViewerApp(load_runs([path], media_roots=[tmp_path / "elsewhere"]))))
    assert [_get(u, f"/media/{k}")[0] for k in range(4)] == [200, 200, 404, 404]
    assert _get(u, "/media/1")[2] == outside.read_bytes()
    assert _get(u, "/media/0")[2] == inside.read_bytes()


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
    server.sock.close()
    assert any("binding to 0.0.0.0" in r.getMessage() for r in caplog.records)
    assert any("--allow-host" in r.getMessage() for r in caplog.records)
    with caplog.at_level(logging.WARNING, logger="diffcap"):
        caplog.clear()
        server = make_server(ViewerApp(load_runs([run])), "127.0.0.1", 0)
    server.sock.close()
    assert not caplog.records
    assert server.address[0] == "127.0.0.1"
