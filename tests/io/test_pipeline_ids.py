"""Video ids stay bound to their source across reruns whatever else the input list holds.

Regression for: ``diffcap run dup/b`` then ``diffcap run dup/a dup/b`` bound ``x`` and
``x-<hash>`` both to dup/b/x.mp4 and never captioned dup/a/x.mp4.
"""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from diffcap.config import RunConfig
from diffcap.config.resolve import config_to_dict, resolve_config
from diffcap.pipeline.runner import config_changes, register_inputs, run_dataset
from diffcap.store import RunStore, VideoEntry
from diffcap.store.db import VideoIdConflict
from diffcap.video.synth import Scene, write_video
from support.servers import FaultServer


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


@pytest.fixture
def store(tmp_path):
    s = RunStore.open(tmp_path / "run" / "run.sqlite")
    yield s
    s.close()


def bindings(store: RunStore) -> dict[str, str]:
    return {v["video_id"]: v["source"] for v in store.videos()}


def assert_one_id_per_source(store: RunStore, sources) -> dict[str, str]:
    ids = bindings(store)
    by_source = {}
    for vid, src in ids.items():
        assert src not in by_source, f"{src} registered twice: {by_source.get(src)}, {vid}"
        by_source[src] = vid
    assert set(by_source) == {str(s.resolve()) for s in sources}
    return by_source


def test_rerun_with_more_inputs_keeps_ids_and_adds_the_new_source(tmp_path, store):
    a, b = touch(tmp_path / "dup/a/x.mp4"), touch(tmp_path / "dup/b/x.mp4")
    cfg = RunConfig()
    register_inputs(store, [str(b.parent)], cfg)
    assert bindings(store) == {"x": str(b.resolve())}
    register_inputs(store, [str(a.parent), str(b.parent)], cfg)
    by_source = assert_one_id_per_source(store, [a, b])
    assert by_source[str(b.resolve())] == "x"  # known source keeps its id
    assert by_source[str(a.resolve())].startswith("x-")
    # A third run in yet another order changes nothing.
    before = bindings(store)
    assert register_inputs(store, [str(b.parent), str(a.parent)], cfg).added == 0
    assert bindings(store) == before


def test_growing_folder_new_file_sorting_first(tmp_path, store):
    folder = tmp_path / "grow"
    late = touch(folder / "z" / "clip.mp4")
    touch(folder / "other.mp4")
    cfg = RunConfig()
    register_inputs(store, [str(folder)], cfg)
    assert bindings(store)["clip"] == str(late.resolve())
    early = touch(folder / "a" / "clip.mp4")  # sorts before z/clip.mp4
    assert register_inputs(store, [str(folder)], cfg).added == 1
    by_source = assert_one_id_per_source(store, [late, early, folder / "other.mp4"])
    assert by_source[str(late.resolve())] == "clip"
    assert by_source[str(early.resolve())].startswith("clip-")


def test_fresh_ids_do_not_depend_on_input_order(tmp_path):
    a, b = touch(tmp_path / "a/x.mp4"), touch(tmp_path / "b/x.mp4")
    ids = []
    for order in ([a, b], [b, a]):
        s = RunStore.open(tmp_path / f"run{len(ids)}" / "run.sqlite")
        register_inputs(s, [str(p) for p in order], RunConfig())
        ids.append({v["source"]: v["video_id"] for v in s.videos()})
        s.close()
    assert ids[0] == ids[1]
    # Two new sources wanting the same stem: neither gets the bare stem.
    assert all(v.startswith("x-") for v in ids[0].values()) and len(set(ids[0].values())) == 2


def test_manifest_id_taken_by_another_known_source_is_a_bad_row(tmp_path, store):
    a, b = touch(tmp_path / "a.mp4"), touch(tmp_path / "b.mp4")
    cfg = RunConfig()
    register_inputs(store, [str(a)], cfg)
    manifest = tmp_path / "m.jsonl"
    rows = [
        {"path": "b.mp4", "video_id": "a"},  # claims a.mp4's id
        {"path": "a.mp4", "video_id": "renamed"},  # known source: keeps "a"
        {"path": "c.mp4", "video_id": "c"},
        {"path": "d.mp4", "video_id": "c"},  # same id as the row above
    ]
    touch(tmp_path / "c.mp4"), touch(tmp_path / "d.mp4")
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    register_inputs(store, [str(manifest)], cfg)
    assert bindings(store) == {"a": str(a.resolve()), "c": str((tmp_path / "c.mp4").resolve())}
    bad = {b["row"]: b for b in store.bad_inputs()}
    assert set(bad) == {1, 4}
    assert bad[1]["reason"] == "id_conflict" and str(b.resolve()) not in bindings(store).values()
    assert "already names" in bad[1]["error"] and str(a.resolve()) in bad[1]["error"]
    assert bad[4]["reason"] == "id_conflict"


def test_store_never_rebinds_an_id(store, caplog):
    store.add_videos([VideoEntry("x", "/data/b/x.mp4")])
    with pytest.raises(VideoIdConflict, match=r"/data/b/x\.mp4"):
        store.add_videos([VideoEntry("y", "/y.mp4"), VideoEntry("x", "/data/a/x.mp4")], strict=True)
    assert bindings(store) == {"x": "/data/b/x.mp4"}  # nothing of the batch was written
    with caplog.at_level(logging.WARNING, logger="diffcap.store.db"):
        assert store.add_videos([VideoEntry("x", "/data/a/x.mp4")]) == 0
    assert "already names" in caplog.text  # not silent
    # Same source, different span: also a different video.
    with pytest.raises(VideoIdConflict):
        store.add_videos([VideoEntry("x", "/data/b/x.mp4", 1.0, 2.0)], strict=True)
    assert store.add_videos([VideoEntry("x", "/data/b/x.mp4")], strict=True) == 0


def test_repaired_after_the_old_bug(tmp_path, store):
    """A DB the old code left with two ids on one source: the missing source gets its own."""
    a, b = touch(tmp_path / "dup/a/x.mp4"), touch(tmp_path / "dup/b/x.mp4")
    store.add_videos([VideoEntry("x", str(b.resolve())), VideoEntry("x-1", str(b.resolve()))])
    register_inputs(store, [str(a.parent), str(b.parent)], RunConfig())
    ids = bindings(store)
    assert str(a.resolve()) in ids.values() and ids["x"] == str(b.resolve())


def test_config_changes_ignore_settings_that_do_not_shape_records():
    base = RunConfig()
    ops = base.model_copy(deep=True)
    ops.engine.max_cost_usd, ops.engine.workers, ops.output.shard_size = 9.0, 7, 3
    ops.model.concurrency, ops.model.max_retries, ops.input.download_timeout_s = 64, 1, 5.0
    assert config_changes(config_to_dict(base), config_to_dict(ops)) == []
    real = ops.model_copy(deep=True)
    real.keyframes.interval, real.model.model, real.filter.dedup = 4.0, "other", True
    assert config_changes(config_to_dict(ops), config_to_dict(real)) == [
        "filter.dedup",
        "keyframes.interval",
        "model.model",
    ]


# --- end to end ------------------------------------------------------------------------


def config(srv, **over):
    base = {
        "model.backend": "openai",
        "model.api_base": srv.base_url,
        "model.model": "tiny",
        "model.api_key": "test",
        "model.max_retries": 0,
        "keyframes.embedder": "weightless",
        "engine.workers": 1,
    }
    base.update(over)
    return resolve_config(None, None, base)


def records(run_dir):
    out = []
    for shard in sorted((run_dir / "records").glob("records-*.jsonl")):
        out += [json.loads(x) for x in shard.read_text().splitlines()]
    return out


def test_run_dataset_rerun_with_a_second_copy(tmp_path, caplog):
    """The review's repro, in process: every copy captioned once, under its own id."""
    b = tmp_path / "dup" / "b" / "x.mp4"
    b.parent.mkdir(parents=True)
    write_video(b, [Scene(1.0, hue=0.1), Scene(1.0, hue=0.6)], size=(48, 48), fps=8)
    a = tmp_path / "dup" / "a" / "x.mp4"
    a.parent.mkdir(parents=True)
    shutil.copy(b, a)
    run_dir = tmp_path / "R"
    with FaultServer(reply=lambda body: "a caption") as srv:
        first = run_dataset([str(b.parent)], run_dir, config(srv), progress=False)
        assert first.counts["done"] == 1
        with caplog.at_level(logging.WARNING, logger="diffcap.pipeline.runner"):
            second = run_dataset(
                [str(a.parent), str(b.parent)],
                run_dir,
                config(srv, **{"engine.max_cost_usd": 5.0, "engine.workers": 2}),
                progress=False,
            )
    assert second.counts == {"done": 2, "failed": 0, "filtered": 0, "pending": 0}
    assert second.done_now == 1
    paths = {r["video_id"]: r["video_path"] for r in records(run_dir)}
    assert paths["x"] == str(b.resolve())
    assert sorted(paths.values()) == sorted([str(a.resolve()), str(b.resolve())])
    # Only engine settings changed: no "config differs" warning.
    assert "config differs" not in caplog.text


def test_spans_are_compared_by_value_and_undecodable_paths_get_ids(tmp_path):
    """``start=-0`` and ``start=0`` are one span (captioned once); a path with bytes that are
    not UTF-8 still gets an id from ``video_ids`` (keyframes of a single file), and in a run
    it is a bad input with its reason, never a crash."""
    import os

    from diffcap.io.ids import InputScan, assign_ids, video_ids

    raw = [
        ({"source": "/a.mp4", "start": s, "end": 5.0}, "m.csv", i)
        for i, s in enumerate((0.0, -0.0), 1)
    ]
    items = assign_ids(raw, (), InputScan())
    assert [(i.video_id, i.start) for i in items] == [("a_0-5", 0.0)]
    odd = os.fsdecode(b"/data/caf\xe9.mp4")
    assert video_ids([odd, "/data/cafe.mp4"]) == ["caf", "cafe"]
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "ok.mp4").write_bytes(b"")
    os.close(os.open(os.fsencode(tmp_path / "v") + b"/caf\xe9.mp4", os.O_CREAT | os.O_WRONLY))
    store = RunStore.open(tmp_path / "run.sqlite")
    reg = register_inputs(store, [str(tmp_path / "v")], RunConfig())
    assert list(reg.ids) == ["ok"] and reg.bad == 1
    (bad,) = store.bad_inputs()
    assert bad["reason"] == "bad_path" and "not valid UTF-8" in bad["error"]
    store.close()
