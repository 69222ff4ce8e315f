"""Each export format on fixture records (real videos and JPEG keyframes)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from diffcap.errors import ConfigError
from diffcap.export import ExportOptions, export
from diffcap.export.parquet import RECORD_SCHEMA

QUIET = ExportOptions(progress=False)


def _lines(path: Path) -> list[dict]:
    return [json.loads(s) for s in path.read_text().splitlines() if s.strip()]


@pytest.mark.parametrize("source", ["records_file", "run_dir"])
def test_jsonl_rewrites_keyframe_paths_relative_to_output(export_fixture, tmp_path, source):
    out = tmp_path / "deep" / "all.jsonl"
    res = export(getattr(export_fixture, source), "jsonl", out, QUIET)
    rows = _lines(out)
    assert res.records == res.items == len(rows) == 2
    assert [r["video_id"] for r in rows] == ["alpha", "beta"]
    for row in rows:
        for kf in row["keyframes"]:
            assert not Path(kf["file"]).is_absolute()
            assert (out.parent / kf["file"]).is_file()
    assert rows[0]["captions"][-1]["idx"] == "-1"


def test_jsonl_absolute_paths(export_fixture, tmp_path):
    out = tmp_path / "abs.jsonl"
    export(
        export_fixture.records_file,
        "jsonl",
        out,
        ExportOptions(progress=False, absolute_paths=True),
    )
    files = [kf["file"] for r in _lines(out) for kf in r["keyframes"]]
    assert all(Path(f).is_absolute() and Path(f).is_file() for f in files)


def test_run_dir_without_database_reads_shards(export_fixture, tmp_path):
    import shutil

    copy = tmp_path / "copied_run"
    shutil.copytree(export_fixture.run_dir, copy)
    (copy / "run.sqlite").unlink()
    out = tmp_path / "x.jsonl"
    export(copy, "jsonl", out, QUIET)
    rows = _lines(out)
    assert len(rows) == 2 and all(
        (out.parent / k["file"]).is_file() for r in rows for k in r["keyframes"]
    )


def test_sharegpt4video_shape(export_fixture, tmp_path):
    out = tmp_path / "sg4v.jsonl"
    export(export_fixture.records_file, "sharegpt4video", out, QUIET)
    alpha, beta = _lines(out)
    assert set(alpha) >= {"video_id", "video_path", "zip_folder", "captions", "timestamps"}
    assert [c["idx"] for c in alpha["captions"]] == ["0", "1", "2", "3", "-1"]
    assert alpha["captions"][-1]["content"].startswith("alpha summary")
    assert alpha["timestamps"] == [0.0, 2.0, 4.0, 6.0, None]
    assert alpha["zip_folder"] == "videos"
    assert all((out.parent / k).is_file() for k in alpha["keyframes"])
    # beta is a fast-mode record: only the summary
    assert [c["idx"] for c in beta["captions"]] == ["-1"]


def test_parquet_has_declared_schema_and_loads_in_datasets(export_fixture, tmp_path):
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "records.parquet"
    res = export(export_fixture.run_dir, "parquet", out, QUIET)
    assert res.items == 2
    assert pq.read_schema(out).equals(RECORD_SCHEMA, check_metadata=False)
    ds = datasets.load_dataset(
        "parquet", data_files=str(out), split="train", cache_dir=str(tmp_path / "hf")
    )
    assert ds.num_rows == 2
    row = ds[0]
    assert row["video_id"] == "alpha" and row["summary"].startswith("alpha summary")
    assert [c["idx"] for c in row["captions"]][-1] == "-1"
    assert (out.parent / row["keyframes"][0]["file"]).is_file()


def test_t2v_records_from_probe(export_fixture, tmp_path):
    out = tmp_path / "t2v.json"
    res = export(export_fixture.records_file, "t2v", out, QUIET)
    rows = json.loads(out.read_text())
    assert res.items == 2
    alpha = rows[0]
    truth = export_fixture.synth["alpha"]
    assert (alpha["width"], alpha["height"]) == truth.size
    assert alpha["fps"] == pytest.approx(25.0)
    assert alpha["num_frames"] == truth.frame_count  # whole 10 s span
    assert alpha["cap"] == ["alpha summary: the whole video"]
    assert (out.parent / alpha["path"]).resolve() == export_fixture.videos["alpha"].resolve()
    assert set(alpha) >= {"path", "cap", "start", "end", "num_frames", "fps", "height", "width"}


def test_unknown_format_lists_choices(export_fixture, tmp_path):
    with pytest.raises(ConfigError) as info:
        export(export_fixture.records_file, "csv", tmp_path / "x", QUIET)
    assert "jsonl" in str(info.value) and "llava" in str(info.value)


def test_missing_keyframe_image_skips_the_record_with_a_clear_reason(export_fixture, tmp_path):
    rec = json.loads(export_fixture.records_file.read_text().splitlines()[0])
    missing = f"captions.keyframes/{rec['video_id']}/missing.jpg"
    rec["keyframes"][1]["file"] = missing
    bad = export_fixture.root / "bad_records.jsonl"
    bad.write_text(json.dumps(rec) + "\n")
    result = export(bad, "llava", tmp_path / "l.json", QUIET)
    assert result.items == 0 and result.nothing_exported
    assert "missing.jpg" in result.failed[rec["video_id"]]
    assert "is missing" in result.failed[rec["video_id"]]


def test_not_a_source(tmp_path):
    with pytest.raises(ConfigError):
        export(tmp_path, "jsonl", tmp_path / "o.jsonl", QUIET)
