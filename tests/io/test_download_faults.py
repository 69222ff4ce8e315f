"""Downloads cut short or bad: a short body is never cached (retryable), and a cached file
that turns out unreadable is fetched again by ``--retry-failed``. Real loopback HTTP, real
videos, the real ``diffcap run``."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from diffcap.errors import DownloadUnavailable
from diffcap.io.download import cache_path, download
from diffcap.video.synth import Scene, write_video
from support import servers
from support.cli import diffcap

_fault_server_session = servers._fault_server_session
fault_server = servers.fault_server


class _Site:
    """Serves ``body`` at any path; ``short`` sends only part of it under the full
    Content-Length and closes the connection."""

    def __init__(self, body: bytes) -> None:
        self.body, self.short, self.gets = body, False, 0
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                site.gets += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(site.body)))
                self.end_headers()
                self.wfile.write(site.body[: len(site.body) // 2] if site.short else site.body)
                self.wfile.flush()
                self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/clip.mp4"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def good_video(tmp_path) -> bytes:
    path = tmp_path / "good.mp4"
    write_video(path, [Scene(1.0, hue=0.2), Scene(1.0, hue=0.7)], size=(64, 64), fps=10)
    return path.read_bytes()


@pytest.fixture
def site(good_video):
    s = _Site(good_video)
    yield s
    s.close()


def test_a_short_download_is_retryable_and_never_cached(site, tmp_path):
    site.short = True
    dest = tmp_path / "dl"
    with pytest.raises(DownloadUnavailable, match="short download"):
        download(site.url, dest, max_mb=10, timeout_s=10)
    assert not cache_path(site.url, dest).exists()
    assert not list(dest.glob("*.part"))  # the partial file is gone, not renamed into place
    site.short = False
    path = download(site.url, dest, max_mb=10, timeout_s=10)
    assert path.read_bytes() == site.body


def _flags(srv) -> list[str]:
    return [
        "--backend", "openai", "--api-base", srv.base_url, "--model", "tiny",
        "--api-key", "test", "--workers", "1", "--model-max-retries", "0", "--no-progress",
    ]  # fmt: skip


def test_short_download_in_a_run_is_left_pending_then_fetched_again(site, fault_server, tmp_path):
    site.short = True
    out = tmp_path / "run"
    assert diffcap("run", site.url, "--out", str(out), *_flags(fault_server)) == 4
    assert not list((out / "downloads").glob("*.mp4"))
    site.short = False
    assert diffcap("run", site.url, "--out", str(out), *_flags(fault_server)) == 0


def test_retry_failed_downloads_a_bad_file_again(site, good_video, fault_server, tmp_path):
    site.body = good_video[: len(good_video) // 3]  # honestly served, but a broken MP4
    out = tmp_path / "run"
    assert diffcap("run", site.url, "--out", str(out), *_flags(fault_server)) == 1
    gets = site.gets
    site.body = good_video  # the source is fixed
    assert diffcap("run", site.url, "--out", str(out), "--retry-failed", *_flags(fault_server)) == 0
    assert site.gets == gets + 1
    cached = cache_path(site.url, Path(out) / "downloads")
    assert cached.read_bytes() == good_video
