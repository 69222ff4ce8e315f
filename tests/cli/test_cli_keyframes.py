"""``diffcap keyframes`` end to end through the real entry point: the pipeline's
``prepare -> keyframes`` stages over a run directory."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from diffcap.cli.options import ALIASES, KEYFRAMES_FIELDS
from diffcap.config import RunConfig
from diffcap.io.inputs import video_ids
from diffcap.video.synth import Scene, write_video
from support.cli import run_cli


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


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def run_records(run_dir: Path) -> list[dict]:
    out = []
    for shard in sorted((run_dir / "records").glob("records-*.jsonl")):
        out += lines(shard)
    return out


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
            str(videos["a"]),  # the same file twice is one video
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
    kf_root = out / "keyframes"
    dirs = sorted(p.name for p in kf_root.iterdir())
    # colliding stems get stem-<8 hex>, the same ids as the one id policy gives
    assert len(dirs) == 2 and all(re.fullmatch(r"my_clip-[0-9a-f]{8}", d) for d in dirs)
    assert sorted(video_ids([str(videos["a"]), str(videos["b"])])) == dirs
    for d in dirs:
        data = json.loads((kf_root / d / "keyframes.json").read_text())
        assert data["video_id"] == d and data["interval"] == 1.0 and data["threshold"] == 0.8
        assert data["embedder"] == "weightless-v1"
        files = [k["file"] for k in data["keyframes"]]
        assert files and all(f.endswith(".png") for f in files)
        assert all((kf_root / d / f).is_file() for f in files)
    # keyframes-only records, like a run's, plus the (empty) failure lists
    recs = run_records(out)
    assert sorted(r["video_id"] for r in recs) == dirs
    assert {r["mode"] for r in recs} == {"keyframes"} and all(not r["captions"] for r in recs)
    by_path = {r["video_path"]: r["video_id"] for r in recs}
    assert set(by_path) == {str(videos["a"]), str(videos["b"])}
    assert (out / "run.sqlite").is_file()
    assert (out / "failures.jsonl").read_text() == "" and (out / "filtered.jsonl").read_text() == ""
    captured = capsys.readouterr()
    assert "videos: 2 done, 0 failed, 0 filtered, 0 pending" in captured.out
    assert f"keyframes: {sum(len(r['keyframes']) for r in recs)}" in captured.out
    assert "keyframes:" not in captured.err  # -q: no progress bar
    # ids are bound to their source: a rerun with the inputs reordered resumes, same ids
    assert run_cli(["-q", "keyframes", str(videos["b"]), str(videos["a"]), "--out", str(out)]) == 0
    assert {r["video_path"]: r["video_id"] for r in run_records(out)} == by_path
    assert "(this run: +0 done" in capsys.readouterr().out


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
    assert "videos: 1 done, 1 failed, 1 filtered, 0 pending" in captured.out
    assert "1 bad input(s)" in captured.out
    err = captured.err.splitlines()
    [broken] = [x for x in err if x.startswith("failed") and "broken.mp4" in x]
    assert "[not_a_video]" in broken
    [missing] = [x for x in err if x.startswith("bad input") and "missing.mp4" in x]
    assert "[not_found]" in missing
    [short] = [x for x in err if x.startswith("filtered")]
    assert str(videos["short"]) in short and "[too_short]" in short
    assert (out / "keyframes" / "my_clip" / "keyframes.json").is_file()  # the good one
    assert not (out / "keyframes" / "short").exists()
    assert not (out / "keyframes" / "broken").exists()
    failures = {f["source"]: f for f in lines(out / "failures.jsonl")}
    assert set(failures) == {str(videos["bad"]), str(videos["missing"])}
    bad = failures[str(videos["bad"])]
    assert (bad["video_id"], bad["stage"], bad["reason"]) == ("broken", "prepare", "not_a_video")
    gone = failures[str(videos["missing"])]
    assert (gone["stage"], gone["reason"]) == ("input", "not_found")
    (filtered,) = lines(out / "filtered.jsonl")
    assert (filtered["video_id"], filtered["stage"], filtered["reason"]) == (
        "short",
        "prepare",
        "too_short",
    )
    assert [r["video_id"] for r in run_records(out)] == ["my_clip"]


def test_a_missing_input_fails_this_invocation_only(
    videos: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "kf"
    args = ["-q", "keyframes", str(videos["a"]), str(videos["missing"]), "--out", str(out)]
    assert run_cli(args) == 1  # no video failed, but an input was bad
    captured = capsys.readouterr()
    assert "1 bad input(s)" in captured.out and "0 failed" in captured.out
    assert (out / "keyframes" / "my_clip" / "keyframes.json").is_file()
    # a rerun that no longer names the missing file: nothing bad in this invocation
    assert run_cli(["-q", "keyframes", str(videos["a"]), "--out", str(out)]) == 0
    (gone,) = lines(out / "failures.jsonl")  # still listed from the first run
    assert (gone["source"], gone["stage"], gone["reason"]) == (
        str(videos["missing"]),
        "input",
        "not_found",
    )


def test_filtered_is_not_a_failure_and_max_seconds_truncates(
    videos: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --max-duration drops longer videos (b: 7.5 s); --max-seconds processes only the start.
    out = tmp_path / "kf"
    args = [str(videos["a"]), str(videos["b"]), "--out", str(out), "--interval", "1"]
    assert run_cli(["-q", "keyframes", *args, "--max-duration", "7", "--max-seconds", "3"]) == 0
    captured = capsys.readouterr()
    assert "videos: 1 done, 0 failed, 1 filtered" in captured.out
    [line] = [x for x in captured.err.splitlines() if x.startswith("filtered")]
    assert str(videos["b"]) in line and "[too_long]" in line
    (rec,) = run_records(out)
    assert rec["video_path"] == str(videos["a"])
    times = [k["time"] for k in rec["keyframes"]]
    assert times and max(times) <= 3.0
    (filtered,) = lines(out / "filtered.jsonl")
    assert filtered["reason"] == "too_long" and filtered["stage"] == "prepare"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--interval", "0"], "keyframes.interval"),
        (["--threshold", "1.5"], "keyframes.threshold"),
        (["--min-duration", "5", "--max-duration", "2"], "min_duration"),
        (["--set", "keyframes.max_duration=60"], "renamed keyframes.max_seconds"),
        (["--set", "keyframes.min_duration=2"], "moved to filter.min_duration"),
        (["--set", "keyframes.intervall=2"], "unknown config key 'keyframes.intervall'"),
    ],
)
def test_invalid_settings_are_one_line_errors(
    videos: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    needle: str,
) -> None:
    out = tmp_path / "kf"
    assert run_cli(["keyframes", str(videos["a"]), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert not (out / "keyframes").exists()  # refused before any video is touched


def test_unknown_embedder_is_a_one_line_error_not_a_failed_video(
    videos: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "kf"
    rc = run_cli(["-q", "keyframes", str(videos["a"]), "--out", str(out), "--embedder", "nope"])
    err = capsys.readouterr().err.strip()
    assert "unknown image embedder" in err
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("error: "), err
    # nothing marked failed: fixing the typo and rerunning extracts the keyframes
    assert not (out / "failures.jsonl").exists() or lines(out / "failures.jsonl") == []
    assert run_cli(["-q", "keyframes", str(videos["a"]), "--out", str(out)]) == 0
    assert (out / "keyframes" / "my_clip" / "keyframes.json").is_file()


def test_help_lists_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["keyframes", "--help"]) == 0
    text = capsys.readouterr().out
    for flag in (
        "--preset",
        "--config",
        "--set",
        "--interval",
        "--threshold",
        "--max-keyframes",
        "--start",
        "--end",
        "--max-seconds",
        "--min-duration",
        "--max-duration",
        "--embedder",
        "--format",
        "--max-side",
        "--cut-keyframes",
        "--skip-solid",
        "--jpeg-quality",
        "--kf-batch-size",
        "--workers",
        "--engine",
        "--shard-size",
    ):
        assert flag in text, flag
    # one option per exposed config field, named in its help (generated from config.py)
    for section, sfield in RunConfig.model_fields.items():
        for key in sfield.annotation.model_fields:  # type: ignore[union-attr]
            dotted = f"{section}.{key}"
            exposed = section in KEYFRAMES_FIELDS or dotted in KEYFRAMES_FIELDS
            assert (f"({dotted})" in text) == exposed, dotted
            if exposed and dotted in ALIASES:
                assert ALIASES[dotted] in text, dotted
    # help texts are the fields' descriptions; the two durations are told apart
    assert "Drop videos longer than" in text and "Process only the first N seconds" in text
    for flag in ("--api-base", "--model ", "--concurrency", "--max-cost-usd", "--dedup"):
        assert flag not in text, flag  # keyframes calls no model


def test_damaged_video_is_a_warning_not_a_failure(
    videos: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = videos["a"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "kf"
    assert run_cli(["-q", "keyframes", str(cut), str(videos["b"]), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "videos: 2 done, 0 failed" in captured.out
    [line] = [x for x in captured.out.splitlines() if x.startswith("warning")]
    assert line.startswith("warning: cut: decoded") and "of 6.0 s" in line
    assert not [x for x in captured.err.splitlines() if x.startswith("failed")]
    damaged = json.loads((out / "keyframes" / "cut" / "keyframes.json").read_text())["damaged"]
    assert damaged["decoded_until"] < 5.0 and damaged["message"] in line
    # the record carries it too; the intact video has no `damaged` key
    recs = {r["video_id"]: r for r in run_records(out)}
    assert recs["cut"]["damaged"] == damaged
    assert "damaged" not in recs["my_clip"]
