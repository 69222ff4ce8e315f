"""The guard in front of both apps, tried with raw sockets as an attacker would: Host
allow-list, malformed and oversize requests, cross-origin votes, bursts of votes."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from diffcap.store.votes import VoteStore
from diffcap.web.data import load_runs
from diffcap.web.guard import DEFAULT_MAX_BODY, allowed_hosts, host_name
from diffcap.web.review import ReviewApp
from diffcap.web.viewer import ViewerApp
from support.web_runs import raw_http, video, write_run_dir


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("guard")
    return [
        write_run_dir(root / name, [video("v1", [0.0], 1.0, summary=f"{name} says v1")])
        for name in ("sysa", "sysb")
    ]


@pytest.fixture
def review(two_runs, serve_app, tmp_path):
    db = tmp_path / "votes.sqlite"
    app = ReviewApp(load_runs(two_runs), VoteStore(db), reviewer="ann")
    port = urlsplit(serve_app(app, allow_hosts=["review.lan"])).port
    token = next(iter(app.tokens))
    return port, token, db


@pytest.fixture
def viewer(two_runs, serve_app):
    return urlsplit(serve_app(ViewerApp(load_runs(two_runs[:1])))).port


def _votes(db):
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT reviewer, choice FROM votes ORDER BY id").fetchall()
    finally:
        conn.close()


def _get(port, path="/api/meta", host=None, extra=""):
    host = host if host is not None else f"127.0.0.1:{port}"
    head = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n"
    return raw_http(port, head.encode())


def _post(port, body: bytes, headers: dict[str, str]):
    lines = ["POST /api/review/vote HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if "Content-Length" not in headers and "Transfer-Encoding" not in headers:
        lines.append(f"Content-Length: {len(body)}")
    return raw_http(port, ("\r\n".join([*lines, "Connection: close", "", ""])).encode() + body)


def _vote_body(token, reviewer="ann", choice="left"):
    return json.dumps({"reviewer": reviewer, "item": token, "choice": choice}).encode()


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("127.0.0.1:8765", "127.0.0.1"),
        ("LOCALHOST.", "localhost"),
        ("[::1]:80", "::1"),
        ("[::1]", "::1"),
        ("example.com", "example.com"),
        ("", None),
        ("a b", None),
        ("host:port", None),
        ("[::1", None),
        ("user@127.0.0.1", None),
    ],
)
def test_host_name(value, want):
    assert host_name(value) == want


def test_allowed_hosts():
    assert allowed_hosts("127.0.0.1") == {"127.0.0.1", "localhost", "::1"}
    assert "192.168.1.5" in allowed_hosts("192.168.1.5")
    assert allowed_hosts("0.0.0.0", ["Box.LAN."]) == {"127.0.0.1", "localhost", "::1", "box.lan"}


@pytest.mark.parametrize(
    "host", ["attacker.example", "attacker.example:{port}", "127.0.0.1.nip.io:{port}", "", "x y"]
)
def test_requests_naming_another_host_are_refused(viewer, host):
    status, _, body = _get(viewer, host=host.format(port=viewer))
    assert status == 400 and b"total" not in body
    assert _get(viewer, path="/media/0", host=host.format(port=viewer))[0] == 400


@pytest.mark.parametrize(
    "host", ["127.0.0.1:{port}", "localhost:{port}", "LocalHost", "[::1]:{port}"]
)
def test_loopback_names_are_accepted(viewer, host):
    status, _, body = _get(viewer, host=host.format(port=viewer))
    assert status == 200 and json.loads(body)["total"] == 1


def test_allow_host_adds_a_name(review):
    port = review[0]
    assert _get(port, "/api/review/next", host=f"review.lan:{port}")[0] == 200
    assert _get(port, "/api/review/next", host=f"other.lan:{port}")[0] == 400


def test_a_second_host_or_origin_header_is_refused(review):
    port, token, db = review
    extra = "Host: attacker.example\r\n"
    assert _get(port, "/api/review/next", extra=extra)[0] == 400
    ok = {"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{port}"}
    lines = [f"{k}: {v}" for k, v in ok.items()] + ["Origin: http://attacker.example"]
    body = _vote_body(token)
    head = f"POST /api/review/vote HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n" + "\r\n".join(lines)
    req = f"{head}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
    assert raw_http(port, req + body)[0] == 400
    assert _votes(db) == []


def test_a_request_without_host_is_refused(viewer):
    assert raw_http(viewer, b"GET /api/meta HTTP/1.1\r\nConnection: close\r\n\r\n")[0] == 400
    assert raw_http(viewer, b"GET /api/meta HTTP/1.0\r\n\r\n")[0] == 400


@pytest.mark.parametrize("length", ["-1", "abc", "1, 2", "+5", " "])
def test_malformed_content_length_is_400_and_the_server_lives_on(review, length, caplog):
    port, token, db = review
    with caplog.at_level(logging.DEBUG):
        status, _, _ = _post(
            port, _vote_body(token), {"Content-Type": "application/json", "Content-Length": length}
        )
    assert status == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert _get(port, "/api/review/next")[0] == 200
    assert _votes(db) == []


def test_garbage_request_line_and_huge_headers_are_400(viewer):
    assert raw_http(viewer, b"NOT HTTP AT ALL\r\n\r\n")[0] == 400
    big = "X-Big: " + "a" * 100_000 + "\r\n"
    assert _get(viewer, extra=big)[0] in (400, 431)
    assert _get(viewer)[0] == 200


def test_an_oversize_body_is_refused_whole(review):
    port, _, db = review
    # the tail of the body is a whole second request: it must not be parsed as one
    smuggled = f"GET /api/review/next HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    body = b" " * (DEFAULT_MAX_BODY + 1 - len(smuggled)) + smuggled
    status, headers, resp = _post(port, body, {"Content-Type": "application/json"})
    assert status == 413 and headers.get("connection") == "close"
    assert b"progress" not in resp  # exactly one response came back
    assert _votes(db) == []


def test_an_oversize_chunked_body_is_refused(review):
    port, token, db = review
    chunk = b"x" * 4096
    n = DEFAULT_MAX_BODY // len(chunk) + 2
    body = b"".join(b"1000\r\n" + chunk + b"\r\n" for _ in range(n)) + b"0\r\n\r\n"
    status, _, _ = _post(
        port, body, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    )
    assert status == 413 and _votes(db) == []
    small = _vote_body(token)
    body = f"{len(small):x}\r\n".encode() + small + b"\r\n0\r\n\r\n"
    status, _, resp = _post(
        port, body, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    )
    assert status == 200 and json.loads(resp)["recorded"] is True


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Content-Type": "text/plain", "Origin": "http://attacker.example"}, 403),
        ({"Content-Type": "text/plain"}, 415),  # no Origin: still not a simple request
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
        ({"Content-Type": "application/json", "Origin": "http://attacker.example"}, 403),
        ({"Content-Type": "application/json", "Origin": "null"}, 403),
        ({"Content-Type": "application/json", "Origin": "http://localhost:1"}, 403),
        ({"Content-Type": "application/json", "Origin": "https://127.0.0.1:{port}"}, 403),
        ({"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403),
        ({"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"}, 403),
    ],
)
def test_cross_origin_votes_are_refused(review, headers, status):
    port, token, db = review
    headers = {k: v.format(port=port) for k, v in headers.items()}
    assert _post(port, _vote_body(token), headers)[0] == status
    assert _votes(db) == []


def test_same_origin_votes_are_accepted(review):
    port, token, db = review
    ok = {"Content-Type": "application/json; charset=utf-8", "Origin": f"http://127.0.0.1:{port}"}
    status, _, body = _post(port, _vote_body(token), {**ok, "Sec-Fetch-Site": "same-origin"})
    assert status == 200 and json.loads(body) == {"ok": True, "recorded": True}
    assert _post(port, b"{not json", ok)[0] == 400
    assert _post(port, b"\xff\xfe", ok)[0] == 400
    assert _votes(db) == [("ann", "left")]


def test_400_concurrent_votes_are_all_accepted(review):
    port, token, db = review
    barrier = threading.Barrier(400)
    ok = {"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{port}"}

    def vote(i):
        barrier.wait(timeout=30)
        return _post(port, _vote_body(token, reviewer=f"r{i:03d}"), ok)[0]

    with ThreadPoolExecutor(max_workers=400) as pool:
        statuses = list(pool.map(vote, range(400)))
    assert statuses == [200] * 400
    assert len(_votes(db)) == 400
