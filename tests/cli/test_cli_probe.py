"""``diffcap probe``: one JSON line per video; bad files reported, the rest still probed."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from diffcap.cli.main import main
from support.videos import VideoFactory, make_video_factory, write_text


@pytest.fixture(scope="module")
def video_factory(tmp_path_factory: pytest.TempPathFactory) -> VideoFactory:
    return make_video_factory(tmp_path_factory.mktemp("cli-probe"))


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict], str]:
    code = 0
    try:
        main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_probe_prints_one_json_line_per_video(video_factory, capsys) -> None:
    ntsc = video_factory("cli-ntsc", fps=Fraction(30000, 1001), size=(96, 64))
    rotated = video_factory("cli-rot", size=(64, 96), rotation=90, audio=True)
    code, lines, _ = _run(["probe", str(ntsc.path), str(rotated.path)], capsys)
    assert code == 0 and len(lines) == 2
    a, b = lines
    assert a["path"] == str(ntsc.path) and a["container"] == "mp4" and a["codec"] == "h264"
    assert a["fps"] == "30000/1001" and a["fps_float"] == pytest.approx(29.97003)
    assert (a["frame_count"], a["frame_count_exact"]) == (90, True)
    assert a["duration"] == pytest.approx(3.003, abs=1e-6)
    assert a["variable_fps"] is False and a["has_audio"] is False
    assert (b["width"], b["height"], b["rotation"], b["has_audio"]) == (64, 96, 90, True)


def test_probe_exact_count(video_factory, capsys) -> None:
    mkv = video_factory("cli-mkv", suffix=".mkv")
    _, [plain], _ = _run(["probe", str(mkv.path)], capsys)
    _, [exact], _ = _run(["probe", "--exact-count", str(mkv.path)], capsys)
    assert plain["frame_count_exact"] is False
    assert (exact["frame_count"], exact["frame_count_exact"]) == (mkv.frame_count, True)


def test_bad_file_is_reported_and_the_rest_probed(video_factory, tmp_path, capsys) -> None:
    good = video_factory("cli-good").path
    text = write_text(tmp_path / "notes.mp4")
    missing = tmp_path / "missing.mp4"
    code, lines, err = _run(["probe", str(text), str(good), str(missing)], capsys)
    assert code == 1
    assert [line.get("error") for line in lines] == ["not_a_video", None, "not_found"]
    assert lines[1]["path"] == str(good) and lines[1]["codec"] == "h264"
    assert "2 of 3 file(s) failed" in err and "Traceback" not in err
    assert f"{text} (not_a_video)" in err and f"{missing} (not_found)" in err


def test_exit_status_and_no_traceback_in_a_real_process(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "diffcap", "probe", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["error"] == "not_a_file"
    assert "Traceback" not in proc.stderr and "is a directory" in proc.stderr
    debug = subprocess.run(
        [sys.executable, "-m", "diffcap", "--debug", "probe", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_probe_variable_frame_rate_mkv(video_factory, capsys) -> None:
    """The header says 30/1; the measured average (~22 fps) and its count are reported."""
    from diffcap.video.synth import Scene, vfr_times

    vfr = video_factory(
        "cli-vfr", [Scene(3.0), Scene(3.0)], suffix=".mkv", frame_times=vfr_times(6.0)
    )
    _, [plain], _ = _run(["probe", str(vfr.path)], capsys)
    _, [exact], _ = _run(["probe", "--exact-count", str(vfr.path)], capsys)
    true_rate = vfr.frame_count / vfr.duration
    assert plain["variable_fps"] is True and plain["fps"] != "30/1"
    assert plain["fps_float"] == pytest.approx(true_rate, rel=0.02)
    assert Fraction(plain["fps"]) == pytest.approx(true_rate, rel=0.02)
    assert plain["frame_count_exact"] is False
    assert plain["frame_count"] == pytest.approx(vfr.frame_count, rel=0.05)
    assert (exact["frame_count"], exact["frame_count_exact"]) == (vfr.frame_count, True)
