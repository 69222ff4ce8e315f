"""Inputs: directories, globs, single files, URLs and CSV/JSONL/Parquet manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from diffcap.config import InputConfig
from diffcap.errors import ConfigError
from diffcap.io.inputs import collect_inputs, safe_id


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_directory_recursion_by_extension(tmp_path):
    touch(tmp_path / "a.mp4")
    touch(tmp_path / "sub" / "deeper" / "b.MKV")
    touch(tmp_path / "sub" / "notes.txt")
    touch(tmp_path / "sub" / "c.webm")
    scan = collect_inputs([str(tmp_path)], InputConfig())
    names = sorted(i.video_id for i in scan.items)
    assert names == ["a", "b", "c"]
    only_mp4 = collect_inputs([str(tmp_path)], InputConfig(extensions=["mp4"]))
    assert [i.video_id for i in only_mp4.items] == ["a"]


def test_glob_and_single_file_and_url(tmp_path):
    touch(tmp_path / "x1.mp4")
    touch(tmp_path / "x2.mp4")
    touch(tmp_path / "y.mov")
    scan = collect_inputs(
        [str(tmp_path / "x*.mp4"), str(tmp_path / "y.mov"), "https://example.org/v/clip.mp4?sig=1"],
        InputConfig(),
    )
    assert [i.video_id for i in scan.items] == ["x1", "x2", "y", "clip"]
    assert scan.items[-1].is_url
    assert scan.items[0].source == str((tmp_path / "x1.mp4").resolve())


def test_missing_input_is_a_clear_error(tmp_path):
    # a missing video is a bad input with its reason (the batch goes on) ...
    scan = collect_inputs([str(tmp_path / "nope.mp4")], InputConfig())
    assert scan.items == [] and [b.reason for b in scan.bad] == ["not_found"]
    # ... a path that names nothing a video could be, or an empty glob, is a usage error
    with pytest.raises(ConfigError, match="no such file"):
        collect_inputs([str(tmp_path / "nope")], InputConfig())
    with pytest.raises(ConfigError, match="matches no video"):
        collect_inputs([str(tmp_path / "*.mp4")], InputConfig())


def test_broken_symlinks_are_bad_inputs_with_reasons(tmp_path):
    (tmp_path / "d").mkdir()
    touch(tmp_path / "d" / "ok.mp4")
    (tmp_path / "d" / "dangling.mp4").symlink_to(tmp_path / "gone.mp4")
    (tmp_path / "d" / "loop.mp4").symlink_to(tmp_path / "d" / "loop.mp4")
    scan = collect_inputs([str(tmp_path / "d")], InputConfig())
    assert [i.video_id for i in scan.items] == ["ok"]
    reasons = {Path(b.source).name: b.reason for b in scan.bad}
    assert reasons == {"dangling.mp4": "dangling_symlink", "loop.mp4": "symlink_loop"}
    # named directly, too
    direct = collect_inputs([str(tmp_path / "d" / "dangling.mp4")], InputConfig())
    assert [b.reason for b in direct.bad] == ["dangling_symlink"]


def test_ids_are_unique_without_regard_to_case(tmp_path):
    touch(tmp_path / "a" / "Clip2.mp4")
    touch(tmp_path / "b" / "clip2.mp4")
    ids = [i.video_id for i in collect_inputs([str(tmp_path)], InputConfig()).items]
    assert len({i.lower() for i in ids}) == 2, ids


def test_same_stem_gets_unique_stable_ids(tmp_path):
    touch(tmp_path / "a" / "clip.mp4")
    touch(tmp_path / "b" / "clip.mp4")
    touch(tmp_path / "c" / "other.mp4")
    ids1 = [i.video_id for i in collect_inputs([str(tmp_path)], InputConfig()).items]
    ids2 = [i.video_id for i in collect_inputs([str(tmp_path)], InputConfig()).items]
    assert ids1 == ids2 and len(set(ids1)) == 3 and ids1[2] == "other"
    # Neither of two sources wanting one stem gets it bare (no first-come advantage), so
    # their ids do not depend on the order they are listed in.
    assert all(i.startswith("clip-") and len(i) == len("clip-") + 8 for i in ids1[:2])
    b_first = collect_inputs([str(tmp_path / "b"), str(tmp_path / "a")], InputConfig()).items
    assert [i.video_id for i in b_first] == [ids1[1], ids1[0]]


def _rows(tmp_path):
    touch(tmp_path / "long.mp4")
    return [
        {"path": "long.mp4", "start": 10, "end": 70.5, "video_id": "", "caption": "a dog runs"},
        {"path": "long.mp4", "start": 70.5, "end": 130, "video_id": "", "caption": ""},
        {"url": "http://127.0.0.1:1/v.mp4", "video_id": "custom/id 1"},
        {"path": "", "url": ""},
        {"path": "long.mp4", "start": 5, "end": 2},
        {"path": "long.mp4", "start": "soon"},
    ]


def _check_manifest(scan, tmp_path, manifest):
    assert [i.video_id for i in scan.items] == ["long_10-70.5", "long_70.5-130", "custom_id_1"]
    first = scan.items[0]
    assert (first.start, first.end, first.caption) == (10.0, 70.5, "a dog runs")
    assert first.source == str((tmp_path / "long.mp4").resolve())  # relative to manifest
    assert scan.items[1].caption is None
    assert scan.items[2].source == "http://127.0.0.1:1/v.mp4"
    bad = {(b.row, b.reason) for b in scan.bad}
    assert bad == {(4, "bad_row"), (5, "bad_row"), (6, "bad_row")}
    assert all(b.source == str(manifest) for b in scan.bad)
    assert "not after start" in next(b.error for b in scan.bad if b.row == 5)


def test_csv_manifest(tmp_path):
    rows = _rows(tmp_path)
    cols = ["path", "url", "start", "end", "video_id", "caption"]
    lines = [",".join(cols)] + [",".join(str(r.get(c, "")) for c in cols) for r in rows]
    manifest = tmp_path / "m.csv"
    manifest.write_text("\n".join(lines) + "\n")
    _check_manifest(collect_inputs([str(manifest)], InputConfig()), tmp_path, manifest)


def test_jsonl_manifest(tmp_path):
    rows = _rows(tmp_path)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    _check_manifest(collect_inputs([str(manifest)], InputConfig()), tmp_path, manifest)


def test_jsonl_manifest_bad_json_line(tmp_path):
    touch(tmp_path / "a.mp4")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"path": "a.mp4"}\n{not json\n[1, 2]\n')
    scan = collect_inputs([str(manifest)], InputConfig())
    assert [i.video_id for i in scan.items] == ["a"]
    assert [b.row for b in scan.bad] == [2, 3]


def test_parquet_manifest(tmp_path):
    rows = _rows(tmp_path)
    table = pa.table(
        {
            "path": [r.get("path") or None for r in rows],
            "url": [r.get("url") or None for r in rows],
            "start": [
                None if r.get("start") in (None, "soon") else float(r["start"]) for r in rows
            ],
            "end": [float(r["end"]) if r.get("end") is not None else None for r in rows],
            "video_id": [r.get("video_id") or None for r in rows],
            "caption": [r.get("caption") or None for r in rows],
        }
    )
    manifest = tmp_path / "m.parquet"
    pq.write_table(table, manifest)
    scan = collect_inputs([str(manifest)], InputConfig())
    # Row 6's "soon" became null in a typed column, so it is a whole-video row here.
    assert [i.video_id for i in scan.items][:3] == ["long_10-70.5", "long_70.5-130", "custom_id_1"]
    assert {b.row for b in scan.bad} == {4, 5}


def test_duplicate_rows_listed_once(tmp_path):
    touch(tmp_path / "a.mp4")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"path": "a.mp4"}\n{"path": "a.mp4"}\n')
    assert len(collect_inputs([str(manifest), str(tmp_path / "a.mp4")], InputConfig()).items) == 1


def test_safe_id():
    assert safe_id("../etc/passwd") == "etc_passwd"
    assert safe_id("ok-id_1.2") == "ok-id_1.2"
    assert safe_id("///") == "video"
