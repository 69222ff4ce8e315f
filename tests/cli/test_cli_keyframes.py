"""``diffcap keyframes`` end to end through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diffcap.cli.main import main
from diffcap.video.synth import Scene, write_video


def run_cli(args: list[str]) -> int:
    """Run the real entry point; its exit status (main() may or may not call sys.exit)."""
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli-kf")
    a = d / "a" / "my clip.mp4"
    b = d / "b" / "my clip.mp4"  # same name in another folder: ids must differ
    a.parent.mkdir()
    b.parent.mkdir()
    write_video(a, [Scene(3.0), Scene(3.0)], size=(160, 90), fps=25)
    write_video(b, [Scene(2.5), Scene(2.5), Scene(2.5)], size=(128, 72), fps=24)
    short = write_video(d / "short.mp4", [Scene(1.0)], size=(64, 36), fps=10).path
    bad = d / "broken.mp4"
    bad.write_bytes(b"\x00" * 2048)
    return {"a": a, "b": b, "short": short, "bad": bad, "missing": d / "missing.mp4"}


def test_writes_one_folder_per_video(
    videos: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "kf"
    rc = run_cli(
        [
            "-q",
            "keyframes",
            str(videos["a"]),
            str(videos["b"]),
            "--out",
            str(out),
            "--interval",
            "1",
            "--threshold",
            "0.8",
            "--format",
            "png",
            "--max-side",
            "100",
        ]
    )
    assert rc == 0
    dirs = sorted(p.name for p in out.iterdir())
    assert len(dirs) == 2 and all(d.startswith("my_clip-") for d in dirs)
    for d in dirs:
        data = json.loads((out / d / "keyframes.json").read_text())
        assert data["video_id"] == d and data["interval"] == 1.0 and data["threshold"] == 0.8
        assert data["embedder"] == "weightless-v1"
        files = [k["file"] for k in data["keyframes"]]
        assert files and all(f.endswith(".png") for f in files)
        assert all((out / d / f).is_file() for f in files)
    captured = capsys.readouterr()
    assert "2 videos" in captured.out and "0 failures" in captured.out
    assert "keyframes:" not in captured.err  # -q: no progress bar


def test_bad_videos_do_not_stop_the_batch(
    videos: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "kf"
    args = [
        "keyframes",
        str(videos["bad"]),
        str(videos["a"]),
        str(videos["missing"]),
        str(videos["short"]),
        "--out",
        str(out),
        "--min-duration",
        "2",
    ]
    assert run_cli(args) == 1
    captured = capsys.readouterr()
    assert "4 videos" in captured.out and "2 failures" in captured.out
    assert "1 skipped" in captured.out
    assert "[not_found]" in captured.err and "broken.mp4" in captured.err
    assert "[too_short]" in captured.err
    assert (out / "my_clip" / "keyframes.json").is_file()  # the good one was written
    assert not (out / "short").exists()


def test_invalid_settings_are_one_line_errors(
    videos: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["keyframes", str(videos["a"]), "--out", str(tmp_path), "--interval", "0"]) == 1
    assert "--interval" in capsys.readouterr().err
    assert run_cli(["keyframes", str(videos["a"]), "--out", str(tmp_path), "--embedder", "nope"])
    assert "unknown image embedder" in capsys.readouterr().err


def test_help_lists_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["keyframes", "--help"]) == 0
    text = capsys.readouterr().out
    for flag in (
        "--interval",
        "--threshold",
        "--max-keyframes",
        "--start",
        "--end",
        "--min-duration",
        "--max-duration",
        "--embedder",
        "--format",
        "--max-side",
        "--cut-keyframes",
        "--skip-solid",
        "--jpeg-quality",
        "--batch-size",
    ):
        assert flag in text


def test_damaged_video_is_a_warning_not_a_failure(
    videos: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = videos["a"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "kf"
    assert run_cli(["-q", "keyframes", str(cut), str(videos["b"]), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "0 failures" in captured.out and "1 warnings" in captured.out
    [line] = [x for x in captured.err.splitlines() if x.startswith("warning")]
    assert str(cut) in line and "[damaged]" in line and "of 6.0 s" in line
    damaged = json.loads((out / "cut" / "keyframes.json").read_text())["damaged"]
    assert damaged["decoded_until"] < 5.0 and damaged["message"] in line
