"""RunDir: every path of the run-directory layout lies under its root, and a real run writes
nothing the layout does not name."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from diffcap.errors import ConfigError
from diffcap.store import RunDir


def layout_paths(run: RunDir) -> dict[str, Path]:
    """Every path property of ``run`` (found by introspection: a new one is checked too)."""
    names = [n for n, v in vars(RunDir).items() if isinstance(v, property)]
    return {n: getattr(run, n) for n in names if isinstance(getattr(run, n), Path)}


def test_every_path_lies_under_the_root_and_none_is_named_twice(tmp_path):
    run = RunDir(tmp_path / "r")
    paths = layout_paths(run)
    assert {"db", "config", "lock", "records", "parquet", "failures", "filtered"} <= set(paths)
    assert {"keyframes", "logs", "errors_log", "spool", "downloads", "eval_db"} <= set(paths)
    for name, p in paths.items():
        assert p.is_relative_to(run.root) and p != run.root, name
    assert len(set(paths.values())) == len(paths)
    assert run.db == tmp_path / "r" / "run.sqlite"
    assert run.errors_log == tmp_path / "r" / "logs" / "errors.log"
    assert run.keyframes_for("v1") == tmp_path / "r" / "keyframes" / "v1"
    assert run.spool_for("abc") == tmp_path / "r" / "spool" / "abc"


@pytest.mark.parametrize("name", ["..", ".", "", "a/b", "../x", "/etc", "a\\b", "a\x00"])
def test_names_that_would_leave_their_folder_are_refused(tmp_path, name):
    run = RunDir(tmp_path)
    with pytest.raises(ValueError, match="not a single file name"):
        run.keyframes_for(name)
    with pytest.raises(ValueError, match="not a single file name"):
        run.spool_for(name)


def test_beside_an_output_file_and_as_a_value(tmp_path):
    assert RunDir.beside(tmp_path / "captions.jsonl").root == tmp_path / "captions.run"
    assert RunDir.beside(tmp_path / "plain").root == tmp_path / "plain.run"
    run = RunDir(str(tmp_path))
    assert RunDir.of(run) is run and RunDir.of(tmp_path) == run
    assert pickle.loads(pickle.dumps(run)) == run
    assert Path(run) == tmp_path  # os.PathLike: usable wherever a folder path is
    with pytest.raises(AttributeError):
        run.root = tmp_path / "other"  # type: ignore[misc]


def test_require_store_names_the_folder(tmp_path):
    with pytest.raises(ConfigError, match="not a diffcap run directory"):
        RunDir(tmp_path).require_store()


def test_a_run_writes_only_paths_the_layout_names(tmp_path):
    """A real `keyframes` run: every file it leaves is a RunDir file (or SQLite's companions
    of one) or lies in a RunDir folder."""
    from diffcap.config.resolve import resolve_config
    from diffcap.pipeline.runner import run_dataset
    from diffcap.video.synth import Scene, write_video

    video = tmp_path / "v.mp4"
    write_video(video, [Scene(1.5, hue=0.1), Scene(1.5, hue=0.6)], size=(64, 64), fps=10)
    cfg = resolve_config(None, None, {"keyframes.embedder": "weightless"})
    run = RunDir(tmp_path / "out")
    report = run_dataset([str(video)], run.root, cfg, command="keyframes", progress=False)
    assert report.done_now == 1
    paths = layout_paths(run)
    folders = [p for p in paths.values() if p.is_dir()]
    files = {p.name for p in paths.values() if not p.is_dir()}
    files |= {f"{run.db.name}-wal", f"{run.db.name}-shm"}
    left = [p for p in run.root.rglob("*") if p.is_file()]
    assert run.db in left and any(p.is_relative_to(run.keyframes_for("v")) for p in left)
    for p in left:
        named = p.parent == run.root and p.name in files
        assert named or any(p.is_relative_to(f) for f in folders), p
