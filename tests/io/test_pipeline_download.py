"""URL downloads from a loopback http.server: cache, size limit, timeout, schemes."""

from __future__ import annotations

import http.server
import threading
import time
from functools import partial

import pytest

from diffcap.errors import DownloadError
from diffcap.io.download import cache_path, download
from diffcap.video import probe
from diffcap.video.synth import Scene, write_video


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        if self.path.startswith("/slow"):
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.end_headers()
            for _ in range(50):  # a trickle: never finishes within the test's timeout
                self.wfile.write(b"x" * 100)
                self.wfile.flush()
                time.sleep(0.1)
            return
        if self.path.startswith("/chunked"):
            # No Content-Length: the size limit must hold while streaming.
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"y" * (3 * 1024 * 1024))
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    write_video(root / "clip.mp4", [Scene(1.0), Scene(1.0)], size=(64, 64), fps=10)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=root))
    httpd.daemon_threads = True
    httpd.block_on_close = False  # the slow handler may still trickle after the test
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_and_cache(server, tmp_path):
    dest = tmp_path / "dl"
    path = download(f"{server}/clip.mp4", dest, max_mb=10, timeout_s=10)
    assert path == cache_path(f"{server}/clip.mp4", dest) and path.suffix == ".mp4"
    assert probe(path).duration == pytest.approx(2.0, abs=0.15)
    mtime = path.stat().st_mtime_ns
    assert download(f"{server}/clip.mp4", dest, max_mb=10, timeout_s=10) == path
    assert path.stat().st_mtime_ns == mtime  # reused, not fetched again
    assert not list(dest.glob("*.part"))


def test_size_limit(server, tmp_path):
    dest = tmp_path / "dl"
    with pytest.raises(DownloadError, match="over the"):
        download(f"{server}/clip.mp4", dest, max_mb=0.0001, timeout_s=10)
    with pytest.raises(DownloadError, match="over the"):
        download(f"{server}/chunked", dest, max_mb=1, timeout_s=10)
    assert not list(dest.iterdir())  # no partial files left


def test_timeout(server, tmp_path):
    with pytest.raises(DownloadError, match="timed out") as exc:
        download(f"{server}/slow", tmp_path, max_mb=10, timeout_s=0.5)
    assert "download_timeout_s" in str(exc.value)


def test_http_error(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{server}/missing.mp4", tmp_path, max_mb=10, timeout_s=10)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.org/v.mp4", "s3://bucket/v.mp4"]
)
def test_non_http_schemes_refused(url, tmp_path):
    with pytest.raises(DownloadError, match="only http and https") as exc:
        download(url, tmp_path, max_mb=10, timeout_s=10)
    assert exc.value.reason == "download"
