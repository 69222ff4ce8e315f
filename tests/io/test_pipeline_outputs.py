"""Outputs rewritten from the DB: shards, Parquet (loads in `datasets`), failures; iter_records;
published to any fsspec filesystem (output.uri), exactly once, manifest last."""

from __future__ import annotations

import json
import subprocess
import uuid

import pyarrow.parquet as pq
import pytest

from diffcap.config import OutputConfig
from diffcap.errors import ConfigError, StorageError
from diffcap.export.parquet import RECORD_SCHEMA
from diffcap.io.outputs import iter_records, write_outputs
from diffcap.pipeline.status import format_status, run_status
from diffcap.store import RunStore, VideoEntry
from diffcap.timeline import Caption, Keyframe, Usage, VideoRecord


def make_record(vid: str, n: int = 2) -> dict:
    rec = VideoRecord(
        video_id=vid,
        video_path=f"/data/{vid}.mp4",
        duration=4.0,
        keyframes=[Keyframe(i, 2.0 * i, 1000 * i, f"../keyframes/{vid}/{i}.jpg") for i in range(n)],
        captions=[Caption(str(i), f"frame {i} of {vid}", time=2.0 * i) for i in range(n)]
        + [Caption("-1", f"summary of {vid}", start=0.0, end=4.0)],
        mode="slide",
        provenance={"model": "m"},
        usage=Usage(3, 100, 20, 0.01),
        extra={"span": {"start": 1.0, "end": 5.0}, "short_caption": "short", "note": "x"},
    )
    return rec.to_json()


def fill(tmp_path, n: int = 5) -> RunStore:
    store = RunStore.open(tmp_path / "run.sqlite")
    store.add_videos([VideoEntry(f"v{i}", f"/data/v{i}.mp4") for i in range(n)])
    for i in range(n - 2):
        store.complete(f"v{i}", make_record(f"v{i}"))
    store.fail(f"v{n - 2}", "caption", "request_failed", "HTTP 500 after 6 tries")
    store.filter(f"v{n - 1}", "prepare", "duration", error="duration 200 s is over 120 s")
    store.add_bad_input("/m.csv", 4, "bad_row", "no 'path' or 'url' value")
    return store


def test_shards_parquet_failures(tmp_path):
    store = fill(tmp_path, n=9)  # 7 done
    out = write_outputs(tmp_path, store, OutputConfig(shard_size=3))
    assert out["shards"] == ["records-00000.jsonl", "records-00001.jsonl", "records-00002.jsonl"]
    lines = [
        json.loads(line)
        for s in out["shards"]
        for line in (tmp_path / "records" / s).read_text().splitlines()
    ]
    assert [r["video_id"] for r in lines] == [f"v{i}" for i in range(7)]
    table = pq.read_table(tmp_path / "records.parquet")
    assert table.schema.equals(RECORD_SCHEMA)
    assert table.column("video_id").to_pylist() == [f"v{i}" for i in range(7)]
    assert table.column("summary").to_pylist()[0] == "summary of v0"
    assert table.column("span_start").to_pylist()[0] == 1.0
    assert json.loads(table.column("extra").to_pylist()[0]) == {"note": "x"}
    failures = [json.loads(x) for x in (tmp_path / "failures.jsonl").read_text().splitlines()]
    assert [(f["video_id"], f["reason"]) for f in failures] == [
        ("v7", "request_failed"),
        (None, "bad_row"),
    ]
    filtered = [json.loads(x) for x in (tmp_path / "filtered.jsonl").read_text().splitlines()]
    assert filtered[0]["video_id"] == "v8" and filtered[0]["reason"] == "duration"
    # Rewriting with bigger shards removes the stale shard files (no duplicates).
    out = write_outputs(tmp_path, store, OutputConfig(shard_size=100))
    assert sorted(p.name for p in (tmp_path / "records").iterdir()) == ["records-00000.jsonl"]
    assert not list(tmp_path.glob(".*.tmp"))
    store.close()


def test_parquet_loads_in_datasets(tmp_path):
    import datasets

    store = fill(tmp_path)
    write_outputs(tmp_path, store, OutputConfig())
    store.close()
    ds = datasets.load_dataset(
        "parquet",
        data_files=str(tmp_path / "records.parquet"),
        split="train",
        cache_dir=str(tmp_path / "hf"),
    )
    assert ds.num_rows == 3
    row = ds[0]
    assert row["video_id"] == "v0"
    assert row["captions"][-1] == {
        "idx": "-1",
        "content": "summary of v0",
        "time": None,
        "start": 0.0,
        "end": 4.0,
    }
    assert row["keyframes"][1]["file"] == "../keyframes/v0/1.jpg"


def test_empty_run_writes_empty_files(tmp_path):
    store = RunStore.open(tmp_path / "run.sqlite")
    write_outputs(tmp_path, store, OutputConfig())
    assert pq.read_table(tmp_path / "records.parquet").num_rows == 0
    assert (tmp_path / "records" / "records-00000.jsonl").read_text() == ""
    store.close()


def test_iter_records_and_status(tmp_path):
    fill(tmp_path).close()
    recs = list(iter_records(tmp_path))
    assert [r.video_id for r in recs] == ["v0", "v1", "v2"]
    assert isinstance(recs[0], VideoRecord) and recs[0].summary.content == "summary of v0"
    assert next(iter_records(tmp_path, as_dict=True))["video_id"] == "v0"
    st = run_status(tmp_path)
    assert st["counts"] == {"pending": 0, "done": 3, "failed": 1, "filtered": 1}
    assert st["failures"][0]["reason"] == "request_failed"
    assert st["filtered_reasons"] == {"duration": 1}
    text = format_status(st)
    assert "HTTP 500 after 6 tries" in text and "done: 3" in text and "row 4" in text


def _published(fs, root: str) -> dict[str, bytes]:
    return {p[len(root) + 1 :]: fs.cat_file(p) for p in fs.find(root)}


def test_publish_to_an_fsspec_filesystem_matches_the_run_dir(tmp_path):
    store = fill(tmp_path, n=9)  # 7 done, 1 failed, 1 filtered, 1 bad input
    uri = f"memory://diffcap-test-{uuid.uuid4().hex[:8]}/runs/a"
    out = write_outputs(tmp_path, store, OutputConfig(shard_size=3, uri=uri))
    fs, root = pytest.importorskip("fsspec").core.url_to_fs(uri)
    files = _published(fs, root)
    names = [f"records/records-0000{i}.jsonl" for i in range(3)]
    assert set(files) == {
        *names,
        "records.parquet",
        "failures.jsonl",
        "filtered.jsonl",
        "_manifest.json",
    }
    for name in set(files) - {"_manifest.json"}:
        assert files[name] == (tmp_path / name).read_bytes(), name
    manifest = json.loads(files["_manifest.json"])
    assert [f["name"] for f in manifest["files"]][:3] == names
    assert all(f["bytes"] == len(files[f["name"]]) for f in manifest["files"])
    assert out["published"] == {"uri": uri, "files": 6}
    # A rewrite with bigger shards removes the stale remote shards: no record twice.
    write_outputs(tmp_path, store, OutputConfig(shard_size=100, uri=uri))
    files = _published(fs, root)
    shards = sorted(n for n in files if n.startswith("records/"))
    assert shards == ["records/records-00000.jsonl"]
    ids = [json.loads(line)["video_id"] for line in files[shards[0]].decode().splitlines()]
    assert ids == [f"v{i}" for i in range(7)]
    store.close()


def test_publish_to_a_local_path_leaves_no_temporary_files(tmp_path):
    store = fill(tmp_path / "run")
    dest = tmp_path / "published"
    write_outputs(tmp_path / "run", store, OutputConfig(uri=f"file://{dest}"))
    assert (dest / "records" / "records-00000.jsonl").read_bytes() == (
        tmp_path / "run" / "records" / "records-00000.jsonl"
    ).read_bytes()
    assert not [p for p in dest.rglob("*") if p.name.endswith(".tmp")]
    store.close()


def test_unknown_protocol_is_a_one_line_config_error(tmp_path):
    store = fill(tmp_path)
    with pytest.raises(ConfigError, match=r"output\.uri nosuchfs://x"):
        write_outputs(tmp_path, store, OutputConfig(uri="nosuchfs://x/y"))
    store.close()


def test_a_read_only_destination_is_a_storage_error_not_a_failed_run(tmp_path):
    """Root ignores permission bits: a read-only bind mount makes a real EROFS."""
    store = fill(tmp_path / "run")
    dest = tmp_path / "ro"
    dest.mkdir()
    try:
        subprocess.run(["mount", "--bind", str(dest), str(dest)], check=True)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(dest)], check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("needs root to make a read-only bind mount")
    try:
        with pytest.raises(StorageError, match="cannot publish the outputs"):
            write_outputs(tmp_path / "run", store, OutputConfig(uri=str(dest / "out")))
        assert store.counts()["done"] == 3  # the run's own state is untouched
    finally:
        subprocess.run(["umount", str(dest)], check=False)
        store.close()


def test_a_bad_output_uri_fails_before_any_video(tmp_path):
    from diffcap.config import RunConfig
    from diffcap.pipeline.runner import run_dataset

    (tmp_path / "clip.mp4").write_bytes(b"not a video")
    cfg = RunConfig.model_validate({"output": {"uri": "nosuchfs://bucket/x"}})
    with pytest.raises(ConfigError, match=r"output\.uri"):
        run_dataset([str(tmp_path / "clip.mp4")], tmp_path / "run", cfg, command="keyframes")
    assert not (tmp_path / "run").exists()  # a first run that failed its pre-flight: no trace


def test_publishing_over_another_runs_outputs_is_refused(tmp_path):
    """A config.yaml reused with --config carries output.uri: a second run must not replace
    the first run's published records."""
    uri = f"memory://diffcap-test-{uuid.uuid4().hex[:8]}/shared"
    first = fill(tmp_path / "a")
    write_outputs(tmp_path / "a", first, OutputConfig(uri=uri))
    write_outputs(tmp_path / "a", first, OutputConfig(uri=uri))  # the same run: fine
    second = fill(tmp_path / "b", n=3)
    with pytest.raises(ConfigError, match="outputs of another run"):
        write_outputs(tmp_path / "b", second, OutputConfig(uri=uri))
    fs, root = pytest.importorskip("fsspec").core.url_to_fs(uri)
    lines = fs.cat_file(f"{root}/records/records-00000.jsonl").decode().splitlines()
    assert len(lines) == 3  # still the first run's three records
    first.close()
    second.close()
