"""``diffcap export`` on the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from diffcap.cli.main import cli
from diffcap.timeline import Caption, Keyframe, VideoRecord


@pytest.fixture
def records(tmp_path: Path) -> Path:
    # the layout `diffcap caption --out captions.jsonl` writes: keyframes in the run
    # directory beside it, record paths relative to the records file's folder
    folder = tmp_path / "captions.run" / "keyframes" / "v1"
    folder.mkdir(parents=True)
    files = []
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30)]):
        Image.new("RGB", (64, 48), colour).save(folder / f"{i}.jpg")
        files.append(f"captions.run/keyframes/v1/{i}.jpg")
    rec = VideoRecord(
        "v1",
        "v1.mp4",
        4.0,
        [Keyframe(0, 0.0, 0, files[0]), Keyframe(1, 2.5, 75, files[1])],
        [
            Caption("0", "a red frame", time=0.0),
            Caption("1", "it turns green", time=2.5),
            Caption("-1", "red, then green", start=0.0, end=4.0),
        ],
        "slide",
    )
    path = tmp_path / "captions.jsonl"
    path.write_text(json.dumps(rec.to_json()) + "\n")
    return path


def test_export_sharegpt4video_cli(records: Path, tmp_path: Path) -> None:
    out = tmp_path / "o" / "sg.jsonl"
    res = CliRunner().invoke(
        cli, ["-q", "export", str(records), "--format", "sharegpt4video", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "sharegpt4video: 1 records -> 1 items" in res.output
    row = json.loads(out.read_text())
    assert row["timestamps"] == [0.0, 2.5, None]


def test_export_llava_tasks_cli(records: Path, tmp_path: Path) -> None:
    out = tmp_path / "l.json"
    res = CliRunner().invoke(
        cli,
        ["-q", "export", str(records), "--format", "llava", "--tasks", "slide", "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    items = json.loads(out.read_text())
    assert [i["task"] for i in items] == ["slide", "slide"]
    assert "slide 2" in res.output and (out.parent / items[1]["image"]).is_file()


def test_bad_format_and_tasks(records: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["export", str(records), "--format", "csv", "--out", "x"])
    assert res.exit_code == 2 and "jsonl" in res.output and "llava" in res.output
    res = CliRunner().invoke(
        cli,
        [
            "export",
            str(records),
            "--format",
            "llava",
            "--tasks",
            "slide,dance",
            "--out",
            str(tmp_path / "x.json"),
        ],
    )
    assert res.exit_code == 2 and "dance" in res.output


def test_console_error_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "diffcap",
            "export",
            str(tmp_path / "empty"),
            "--format",
            "jsonl",
            "--out",
            str(tmp_path / "o.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2  # a ConfigError (not a run directory): bad usage
    assert "not a diffcap run directory" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_llava_zero_task_is_reported_cli(records: Path, tmp_path: Path) -> None:
    out = tmp_path / "l.json"
    args = ["-q", "export", str(records), "--format", "llava", "--out", str(out)]
    res = CliRunner().invoke(cli, [*args, "--tasks", "slide,clip"])
    assert res.exit_code == 0, res.output
    assert "slide 2, clip 0" in res.output
    assert "clip: 0 samples" in res.output and "--clip-captions FILE" in res.output
    # only the task that has nothing: the note, and a failing exit status
    res = CliRunner().invoke(cli, [*args, "--tasks", "clip"])
    assert res.exit_code == 1
    assert "clip: 0 samples" in res.output and "nothing exported" in res.output
    assert json.loads(out.read_text()) == []


def test_missing_video_skipped_cli(tmp_path: Path) -> None:
    from diffcap.video.synth import write_video

    video = write_video(tmp_path / "ok.mp4", size=(64, 48), fps=10).path
    recs = []
    for vid, path in (("gone", "nowhere/gone.mp4"), ("ok", str(video))):
        summary = Caption("-1", f"{vid} summary", start=0.0, end=2.0)
        recs.append(VideoRecord(vid, path, 2.0, [], [summary], "fast"))
    src = tmp_path / "r.jsonl"
    src.write_text("".join(json.dumps(r.to_json()) + "\n" for r in recs))
    for fmt in ("grid", "t2v"):
        out = tmp_path / f"{fmt}.json"
        res = CliRunner().invoke(
            cli, ["-q", "export", str(src), "--format", fmt, "--out", str(out)]
        )
        assert res.exit_code == 0, res.output
        assert f"{fmt}: 2 records -> 1 items" in res.output
        assert "skipped 1 video not found" in res.output
        assert [r["video_id"] for r in json.loads(out.read_text())] == ["ok"]
    # nothing exportable at all: the summary line, then a failing exit status
    src.write_text(json.dumps(recs[0].to_json()) + "\n")
    res = CliRunner().invoke(
        cli, ["-q", "export", str(src), "--format", "grid", "--out", str(tmp_path / "g.json")]
    )
    assert res.exit_code == 1 and "skipped 1 video not found" in res.output
