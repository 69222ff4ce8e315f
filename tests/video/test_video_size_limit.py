"""A stream whose header declares absurd frames is refused up front, in one line, without
the memory a decoded frame of that size would take (16000x16000: 384 MB YUV, 768 MB RGB)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from diffcap.video.probe import FrameTooLarge
from diffcap.video.pyav import PyAVSource

SMALL = 64


def write_claiming(path: Path, width: int, height: int) -> Path:
    """A real 64x64 MJPEG AVI whose headers (AVI and every JPEG SOF0) claim width x height."""
    small = path.with_name("small.avi")
    with av.open(str(small), "w") as out:
        stream = out.add_stream("mjpeg", rate=10)
        stream.width = stream.height = SMALL
        stream.pix_fmt = "yuvj420p"
        for i in range(10):
            img = np.full((SMALL, SMALL, 3), 20 * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    data = bytearray(small.read_bytes())
    sof = b"\xff\xc0"
    i = data.find(sof)
    while i >= 0:
        if struct.unpack(">HH", data[i + 5 : i + 9]) == (SMALL, SMALL):
            data[i + 5 : i + 9] = struct.pack(">HH", height, width)
        i = data.find(sof, i + 2)
    data = data.replace(struct.pack("<II", SMALL, SMALL), struct.pack("<II", width, height))
    path.write_bytes(bytes(data))
    return path


def test_huge_header_is_refused_in_one_line(tmp_path: Path) -> None:
    path = write_claiming(tmp_path / "huge.avi", 16000, 16000)
    with av.open(str(path)) as c:  # the file really claims it
        assert (c.streams.video[0].width, c.streams.video[0].height) == (16000, 16000)
    with pytest.raises(FrameTooLarge) as err:
        PyAVSource(path)
    message = str(err.value)
    assert "\n" not in message and "16000x16000" in message and "max_pixels" in message
    assert err.value.reason == "too_large"


def test_limit_is_a_setting(tmp_path: Path) -> None:
    write_claiming(tmp_path / "huge.avi", 16000, 16000)
    real = tmp_path / "small.avi"  # the genuine 64x64 file it was made from
    with pytest.raises(FrameTooLarge, match="64x64"):
        PyAVSource(real, max_pixels=SMALL * SMALL - 1)
    with PyAVSource(real, max_pixels=None) as src:
        assert src.info().width == SMALL
        assert sum(1 for _ in src.frames()) == 10


CHILD = """
import json, sys
from diffcap.config import KeyframeConfig
from diffcap.keyframes import extract_keyframes
from diffcap.video.probe import FrameTooLarge
try:
    extract_keyframes(sys.argv[1], KeyframeConfig())
    outcome = "extracted"
except FrameTooLarge as exc:
    outcome = str(exc)
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"outcome": outcome, "peak_mb": int(hwm.split()[1]) / 1024}))
"""


def test_extraction_refuses_without_blowing_memory(tmp_path: Path) -> None:
    path = write_claiming(tmp_path / "huge.avi", 16000, 16000)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "over the limit" in result["outcome"]
    assert result["peak_mb"] < 384  # one decoded 16000x16000 YUV frame would be 384 MB
