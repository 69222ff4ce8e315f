"""Loading runs for the pages, and the safety helpers."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from diffcap.errors import ConfigError
from diffcap.web.data import load_run, load_runs, system_names
from diffcap.web.safety import (
    ContainedFiles,
    PathRefused,
    contained_file,
    json_for_script,
    redact,
)
from support.web_runs import video, write_captions_jsonl, write_run_dir


def test_run_directory_with_failures_filtered_and_clips(tmp_path):
    rec = video("v1", [0.0, 2.0, 5.5], 6.0, clips=[{"start": 2.0, "end": 5.5, "content": "B"}])
    rec["captions"].insert(-1, {"idx": "clip:0-2", "content": "A"})  # clip caption, no times
    write_run_dir(
        tmp_path / "run",
        [rec],
        failures=[
            {
                "video_id": "bad",
                "video_path": "/x/bad.mp4",
                "stage": "probe",
                "reason": "not_a_video",
                "message": "not a video",
            }
        ],
        filtered=[
            {
                "video_id": "long",
                "video_path": "/x/long.mp4",
                "stage": "filter",
                "reason": "too_long",
                "message": "300 s",
            }
        ],
    )
    run = load_run(tmp_path / "run")
    by_id = {e.video_id: e for e in run.entries}
    assert run.name == "run" and set(by_id) == {"v1", "bad", "long"}
    v1 = by_id["v1"]
    assert v1.status == "ok" and v1.summary == "summary of v1" and v1.model == "gpt-4o"
    assert [(k.time, k.caption) for k in v1.keyframes] == [
        (0.0, "v1 caption 0 at 0.00s"),
        (2.0, "v1 caption 1 at 2.00s"),
        (5.5, "v1 caption 2 at 5.50s"),
    ]
    # record paths are relative to records/; the loader makes them run-root relative
    assert v1.keyframes[1].file == "keyframes/v1/00001_00002.000.jpg"
    assert (tmp_path / "run" / v1.keyframes[1].file).is_file()
    assert v1.clips == [
        {"start": 0.0, "end": 2.0, "content": "A"},
        {"start": 2.0, "end": 5.5, "content": "B"},
    ]
    assert by_id["bad"].status == "failed" and by_id["bad"].notes[0]["reason"] == "not_a_video"
    assert by_id["long"].status == "filtered"
    assert run.files() == {k.file for k in v1.keyframes}


def test_captions_jsonl_with_failures_and_a_bad_line(tmp_path, caplog):
    path = write_captions_jsonl(
        tmp_path / "captions.jsonl",
        [video("c1", [0.0, 1.0], 2.0)],
        failures=[
            {
                "video_id": "c2",
                "video_path": "c2.mp4",
                "stage": "caption",
                "reason": "request_failed",
                "message": "HTTP 500",
            }
        ],
    )
    with path.open("a") as fh:
        fh.write("{not json\n\n")
    with caplog.at_level(logging.WARNING, logger="diffcap"):
        run = load_run(path)
    assert "not JSON" in caplog.text
    assert {e.video_id: e.status for e in run.entries} == {"c1": "ok", "c2": "failed"}
    assert run.root == tmp_path
    assert run.entries[0].keyframes[0].file == "captions.keyframes/c1/00000_00000.000.jpg"


def test_later_shard_line_wins_and_media_is_found_relative_to_records(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"\x00" * 10)
    first = video("v", [0.0], 1.0, summary="old", video_path="clip.mp4")
    second = video("v", [0.0], 1.0, summary="new", video_path="clip.mp4")
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n")
    (e,) = load_run(path).entries
    assert e.summary == "new" and e.media == (tmp_path / "clip.mp4").resolve()


def test_missing_or_empty_run_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no such run"):
        load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no records found") as info:
        load_run(tmp_path / "empty")
    assert "records-" in str(info.value)


def test_system_names_are_unique():
    assert system_names([Path("/a/x/run"), Path("/a/y/run")]) == ["x/run", "y/run"]
    assert system_names([Path("/a/gpt.jsonl"), Path("/b/local")]) == ["gpt", "local"]
    assert system_names([Path("/a/run"), Path("/a/run")]) == ["run#1", "run#2"]


def test_load_runs_names_follow_paths(tmp_path):
    a = write_run_dir(tmp_path / "one" / "out", [video("v", [0.0], 1.0)])
    b = write_run_dir(tmp_path / "two" / "out", [video("v", [0.0], 1.0)])
    assert [r.name for r in load_runs([a, b])] == ["one/out", "two/out"]
    assert {e.run for r in load_runs([a, b]) for e in r.entries} == {"one/out", "two/out"}


def test_redact_removes_keys_but_keeps_counts():
    prov = {
        "model": "m",
        "api_key": "abc",
        "options": {
            "max_tokens": 50,
            "token": "t0k",
            "hf_token": "x",
            "note": "use sk-abcdefghijklmnop123 here",
        },
        "api_base": "http://u:pw@host:8000/v1",
        "OPENAI_API_KEY": "k",
        "empty_key": None,
    }
    out = redact(prov)
    assert out["api_key"] == out["OPENAI_API_KEY"] == "[redacted]"
    assert out["options"]["max_tokens"] == 50
    assert out["options"]["token"] == out["options"]["hf_token"] == "[redacted]"
    assert "sk-abc" not in out["options"]["note"]
    assert out["api_base"] == "http://[redacted]@host:8000/v1"  # user name too
    assert out["model"] == "m" and out["empty_key"] is None
    assert prov["api_key"] == "abc"  # the input is not modified


def test_json_for_script_cannot_close_the_script():
    text = json_for_script({"t": "</script><!-- & \u2028"})
    assert "</" not in text and "<!--" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"t": "</script><!-- & \u2028"}


def test_contained_file(tmp_path):
    (tmp_path / "root" / "a").mkdir(parents=True)
    (tmp_path / "root" / "a" / "f.jpg").write_bytes(b"x")
    (tmp_path / "out.txt").write_text("no")
    (tmp_path / "root" / "link.jpg").symlink_to(tmp_path / "out.txt")
    (tmp_path / "root" / "inner.jpg").symlink_to(tmp_path / "root" / "a" / "f.jpg")
    root = tmp_path / "root"
    assert contained_file(root, "a/f.jpg") == (root / "a" / "f.jpg").resolve()
    assert contained_file(root, "inner.jpg") == (root / "a" / "f.jpg").resolve()
    for bad in ["../out.txt", "a/../../out.txt", "/etc/passwd", "link.jpg", "a\\f.jpg", ""]:
        with pytest.raises(PathRefused) as info:
            contained_file(root, bad)
        assert info.value.status == 403, bad
    with pytest.raises(PathRefused) as info:
        contained_file(root, "a/missing.jpg")
    assert info.value.status == 404


def test_contained_files_follows_the_same_rules(tmp_path):
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f.jpg").write_bytes(b"x")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "f.jpg").write_text("no")
    (root / "link.jpg").symlink_to(tmp_path / "out" / "f.jpg")
    (root / "inner.jpg").symlink_to(root / "a" / "b" / "f.jpg")
    (root / "escape").symlink_to(tmp_path / "out")  # a directory link leaving the root
    (root / "alias").symlink_to(root / "a")  # a directory link staying inside
    files = ContainedFiles(root)
    for rel in ["a/b/f.jpg", "inner.jpg", "alias/b/f.jpg", "a//b/./f.jpg"]:
        real = files.relative(rel)
        assert real == "a/b/f.jpg"
        assert Path(files.root, real) == contained_file(root, rel)
    bad = ["../out/f.jpg", "a/../../out/f.jpg", "/etc/passwd", "link.jpg", "escape/f.jpg"]
    for rel in [*bad, "a\\b", "", "a/\x00"]:
        with pytest.raises(PathRefused) as info:
            files.relative(rel)
        assert info.value.status == 403, rel
        with pytest.raises(PathRefused):
            contained_file(root, rel)
    for rel in ["a/missing.jpg", "a/b", "nope/x.jpg"]:
        with pytest.raises(PathRefused) as info:
            files.relative(rel)
        assert info.value.status == 404, rel


def test_run_directory_failure_and_filter_lines_as_the_pipeline_writes_them(tmp_path):
    write_run_dir(
        tmp_path / "run",
        [video("v1", [0.0], 1.0)],
        failures=[
            {"video_id": "v2", "source": "/in/v2.mp4", "stage": "keyframes",
             "reason": "corrupt", "error": "decode failed", "attempts": 2},
            {"video_id": None, "source": "list.csv", "row": 7, "stage": "input",
             "reason": "bad_input", "error": "no path", "attempts": 0},
        ],
        filtered=[{"video_id": "v3", "source": "/in/v3.mp4", "stage": "dedup",
                   "reason": "duplicate", "detail": None, "duration": 4.0,
                   "duplicate_of": "v1", "similarity": 0.97}],
    )  # fmt: skip
    by_id = {e.video_id: e for e in load_run(tmp_path / "run").entries}
    assert by_id["v2"].status == "failed" and by_id["v2"].video_path == "/in/v2.mp4"
    assert by_id["v2"].notes[0]["message"] == "decode failed (attempts=2)"
    assert by_id["list.csv"].notes[0]["message"] == "no path (row=7, attempts=0)"
    note = by_id["v3"].notes[0]
    assert by_id["v3"].status == "filtered" and note["reason"] == "duplicate"
    assert note["message"] == "duplicate_of=v1, similarity=0.97, duration=4.0"
