"""``diffcap sample``: a demo video with distinct scenes, its scene times printed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from diffcap.cli.main import main
from diffcap.video import open_video, probe


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = 0
    try:
        main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_sample_writes_the_demo_video(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo" / "sample.mp4"
    code, text, _ = _run(["sample", str(out), "--duration", "6", "--size", "160x90"], capsys)
    assert code == 0
    assert str(out) in text and "5 scenes" in text
    assert "0.000, 1.200, 2.400, 3.600, 4.800" in text
    info = probe(out)
    assert (info.width, info.height, info.codec, info.has_audio) == (160, 90, "h264", True)
    assert info.duration == pytest.approx(6.0, abs=0.01)
    with open_video(out) as src:  # the scenes really differ
        a, b = (f.image.astype(np.int16) for f in src.frames_at([0.6, 1.8]))
    assert np.abs(a - b).mean() > 30


def test_sample_options_and_json(tmp_path: Path, capsys) -> None:
    out = tmp_path / "ntsc.mkv"
    code, text, _ = _run(
        [
            "sample",
            str(out),
            "--duration",
            "2",
            "--size",
            "64x48",
            "--fps",
            "30000/1001",
            "--codec",
            "vp9",
            "--scenes",
            "2",
            "--json",
        ],
        capsys,
    )
    assert code == 0
    d = json.loads(text)
    assert d["fps"] == "30000/1001" and d["codec"] == "vp9" and len(d["scene_starts"]) == 2
    info = probe(out)
    assert info.codec == "vp9" and str(info.fps) == "30000/1001"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "big"], "WIDTHxHEIGHT"),
        (["--fps", "0"], "frame rate"),
        (["--codec", "vp9"], "cannot hold"),
        (["--size", "65x47"], "even"),
    ],
)
def test_sample_refuses_bad_options(tmp_path: Path, capsys, args, message) -> None:
    code, _, err = _run(["sample", str(tmp_path / "x.mov"), *args], capsys)
    assert code == 2 and message in err
    assert not (tmp_path / "x.mov").exists()
