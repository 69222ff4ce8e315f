"""Real live streams on loopback for tests: FFmpeg writing HLS (or MPEG-TS, or pushing RTSP)
in real time (``-re``), and Python's http.server serving the playlist.

    with HLSStream(tmp_path, video) as hls:       # ffmpeg -re ... -f hls, http.server
        hls.url                                    # http://127.0.0.1:PORT/live.m3u8
        hls.kill()                                 # SIGKILL the writer (no EXT-X-ENDLIST)
        hls.start()                                # a new writer, a new playlist
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from diffcap.config import RunConfig

FFMPEG = shutil.which("ffmpeg")
#: Low-latency H.264 with 1 s GOPs: segments of about 1 s.
ENCODE = ["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "10", "-an"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ffmpeg(*args: str) -> subprocess.Popen[bytes]:
    assert FFMPEG, "ffmpeg is needed (apt-get install ffmpeg)"
    cmd = [FFMPEG, "-nostdin", "-loglevel", "error", "-y", *args]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class HLSStream:
    def __init__(self, root: Path, video: Path, seconds: float | None = None) -> None:
        self.dir = root / "hls"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.video, self.seconds = video, seconds
        self.port = free_port()
        self.writer: subprocess.Popen[bytes] | None = None
        self.http: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/live.m3u8"

    def start(self, seconds: float | None = None) -> None:
        """A new writer (a new playlist from segment 0) once the previous one is gone."""
        for old in self.dir.iterdir():
            old.unlink()
        limit = seconds or self.seconds
        self.writer = ffmpeg(
            "-re", "-i", str(self.video), *(["-t", str(limit)] if limit else []), *ENCODE,
            "-f", "hls", "-hls_time", "1", "-hls_list_size", "0",
            "-hls_flags", "program_date_time", str(self.dir / "live.m3u8"),
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while not (self.dir / "live.m3u8").exists():
            assert time.monotonic() < deadline, "ffmpeg wrote no playlist"
            time.sleep(0.1)

    def serve(self) -> None:
        self.http = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1",
             "--directory", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "http.server did not start"
                time.sleep(0.1)

    def alive(self) -> bool:
        return self.writer is not None and self.writer.poll() is None

    def kill(self) -> None:
        """SIGKILL the writer: the playlist stops growing without EXT-X-ENDLIST."""
        if self.writer is not None and self.writer.poll() is None:
            self.writer.send_signal(signal.SIGKILL)
            self.writer.wait()

    def wait(self, timeout: float = 60) -> None:
        if self.writer is not None:
            self.writer.wait(timeout=timeout)

    def __enter__(self) -> HLSStream:
        self.start()
        self.serve()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
        if self.http is not None:
            self.http.terminate()
            self.http.wait()


def grow_file(video: Path, out: Path, seconds: float) -> subprocess.Popen[bytes]:
    """FFmpeg writing ``out`` (MPEG-TS) in real time, flushed packet by packet."""
    return ffmpeg(
        "-re", "-i", str(video), "-t", str(seconds), *ENCODE, "-flush_packets", "1",
        "-f", "mpegts", str(out),
    )  # fmt: skip


def model_cfg(base_url: str, **sections: dict[str, Any]) -> RunConfig:
    """A run config for the OpenAI-compatible server at ``base_url`` (plus any sections)."""
    data: dict[str, Any] = {
        "model": {"backend": "openai", "api_base": base_url, "model": "m", "api_key": "k"}
    }
    for key, value in sections.items():
        data.setdefault(key, {}).update(value)
    return RunConfig.model_validate(data)


def push_rtsp(video: Path, url: str, seconds: float) -> subprocess.Popen[bytes]:
    """FFmpeg publishing ``video`` in real time to an RTSP server listening at ``url``."""
    return ffmpeg(
        "-re", "-i", str(video), "-t", str(seconds), *ENCODE,
        "-f", "rtsp", "-rtsp_transport", "tcp", url,
    )  # fmt: skip
