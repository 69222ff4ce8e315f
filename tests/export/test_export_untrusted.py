"""Exports read records anyone may have written: one bad keyframe image skips its record
with a reason (the rest is exported, no exit 70), and a record never makes the exporter open
a file that is not a keyframe image of its video (``/etc/passwd``, ``../``)."""

from __future__ import annotations

import json
import shutil

import pytest

from support.cli import diffcap

FORMATS = ["llava", "qwenvl", "llamafactory"]


@pytest.fixture
def records(export_fixture, tmp_path):
    """A private copy of the fixture's captions.jsonl and its keyframes."""
    shutil.copytree(export_fixture.root / "captions.keyframes", tmp_path / "captions.keyframes")
    path = tmp_path / "captions.jsonl"
    shutil.copy(export_fixture.records_file, path)
    return path


def _rows(path):
    lines = path.read_text().splitlines()
    return [json.loads(x) for x in lines]


def _export(records, fmt, out, capsys, caplog):
    code = diffcap("export", str(records), "--format", fmt, "--out", str(out))
    return code, capsys.readouterr().out, caplog.text


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_truncated_keyframe_skips_its_record_only(records, fmt, tmp_path, capsys, caplog):
    recs = _rows(records)
    victim = recs[1]
    image = records.parent / victim["keyframes"][0]["file"]
    image.write_bytes(image.read_bytes()[:300])  # cut short: Pillow cannot decode it
    out = tmp_path / "out" / "train.json"
    code, stdout, log = _export(records, fmt, out, capsys, caplog)
    assert code == 0, log
    text = out.read_text()
    assert recs[0]["video_id"] in text and victim["video_id"] not in text
    assert "skipped 1 bad keyframe image" in stdout and "cannot be read" in log


@pytest.mark.parametrize("name", ["/etc/passwd", "../outside/kf.jpg", "notes/kf.jpg"])
def test_a_record_cannot_make_the_export_open_other_files(records, name, tmp_path, capsys, caplog):
    recs = _rows(records)
    real = records.parent / recs[0]["keyframes"][0]["file"]
    for folder in ("outside", "captions_dir/notes"):  # real JPEGs, but not keyframes
        (tmp_path / folder).mkdir(parents=True)
        shutil.copy(real, tmp_path / folder / "kf.jpg")
    moved = tmp_path / "captions_dir" / "captions.jsonl"
    shutil.move(tmp_path / "captions.keyframes", tmp_path / "captions_dir" / "captions.keyframes")
    recs[0]["keyframes"][1]["file"] = name
    moved.write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = tmp_path / "out" / "train.json"
    code, _, log = _export(moved, "llava", out, capsys, caplog)
    assert code == 0, log
    assert recs[0]["video_id"] not in out.read_text()
    assert "not a keyframe image" in log
    assert not (tmp_path / "out" / "train_images" / recs[0]["video_id"]).exists()
