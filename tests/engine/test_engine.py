"""One engine under every command: identical records from `caption`, `run` and
`run --engine ray`; the stage contract under every executor; failures that tell transient
from permanent (server down or dying, two runs at once, a bug, bad config values)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import support.servers as servers
from diffcap.config import RunConfig
from diffcap.pipeline import iter_records
from diffcap.video.synth import Scene, default_scenes, write_video
from support.cli import diffcap
from support.fault_server import FaultServer

_fault_server_session = servers._fault_server_session
fault_server = servers.fault_server


@pytest.fixture(scope="module", autouse=True)
def _no_ray_left_behind():
    yield
    if "ray" in sys.modules:
        sys.modules["ray"].shutdown()


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("engine_videos")
    (folder / "a").mkdir()
    (folder / "b").mkdir()
    # Clip2 / clip2: one id each, unique without regard to case.
    specs = [("a/Clip2.mp4", 3, 6.0, 96), ("b/clip2.mp4", 2, 4.0, 80), ("a/x.mp4", 4, 8.0, 112)]
    for name, n, seconds, width in specs:
        write_video(folder / name, default_scenes(n, seconds), size=(width, 64), fps=10)
    return folder


def model_flags(url: str) -> list[str]:
    return ["--api-base", url, "--model", "loopback", "--api-key", "k", "--interval", "1"]


def comparable(run_dir: Path) -> list[dict]:
    out = []
    for rec in iter_records(run_dir, as_dict=True):
        out.append(
            {
                "video_id": rec["video_id"],
                "times": [k["time"] for k in rec["keyframes"]],
                "captions": [(c["idx"], c.get("time"), c["content"]) for c in rec["captions"]],
                "mode": rec["mode"],
                "duration": rec["duration"],
            }
        )
    return out


def test_caption_run_and_ray_give_identical_records(videos, fault_server, tmp_path):
    pytest.importorskip("ray")
    flags = model_flags(fault_server.base_url)
    assert diffcap("caption", str(videos), "--out", str(tmp_path / "c.jsonl"), *flags) == 0
    assert diffcap("run", str(videos), "--out", str(tmp_path / "local"), *flags) == 0
    ray_flags = [*flags, "--engine", "ray", "--workers", "2"]
    assert diffcap("run", str(videos), "--out", str(tmp_path / "ray"), *ray_flags) == 0
    caption = comparable(tmp_path / "c.run")
    assert len(caption) == 3 and all(r["captions"] for r in caption)
    ids = [r["video_id"] for r in caption]
    assert len({i.lower() for i in ids}) == 3  # case-insensitively unique
    assert comparable(tmp_path / "local") == caption
    assert comparable(tmp_path / "ray") == caption
    lines = (tmp_path / "c.jsonl").read_text().splitlines()
    assert [json.loads(x)["video_id"] for x in lines] == ids
    for line in lines:  # keyframe files relative to the records file
        for k in json.loads(line)["keyframes"]:
            assert (tmp_path / k["file"]).is_file()


def test_keyframes_then_run_reuses_keyframes(videos, fault_server, tmp_path):
    run_dir = tmp_path / "r"
    assert diffcap("keyframes", str(videos), "--out", str(run_dir), "--interval", "1") == 0
    recs = comparable(run_dir)
    assert [r["mode"] for r in recs] == ["keyframes"] * 3 and not recs[0]["captions"]
    stamp = {p: p.stat().st_mtime_ns for p in (run_dir / "keyframes").rglob("*.jpg")}
    flags = model_flags(fault_server.base_url)
    assert diffcap("run", "--out", str(run_dir), *flags) == 0  # the stage list grew
    assert [r["mode"] for r in comparable(run_dir)] == ["slide"] * 3
    assert {p: p.stat().st_mtime_ns for p in stamp} == stamp  # not extracted again


def test_server_down_fails_fast_before_any_decoding(videos, tmp_path, capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends
    started = time.monotonic()
    code = diffcap(
        "run",
        str(videos),
        "--out",
        str(tmp_path / "r"),
        "--api-base",
        f"http://127.0.0.1:{port}/v1",
    )
    assert code == 3 and time.monotonic() - started < 2.0
    err = capsys.readouterr().err
    assert "cannot reach the model server" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r" / "keyframes").exists()  # nothing was decoded


def test_mistyped_model_folder_fails_fast(videos, tmp_path, capsys):
    pytest.importorskip("torch")
    started = time.monotonic()
    args = ["--backend", "transformers", "--model", str(tmp_path / "no-such-model")]
    assert diffcap("caption", str(videos / "a"), "--out", str(tmp_path / "c.jsonl"), *args) == 3
    assert time.monotonic() - started < 10.0  # torch import included; no model load
    assert "model folder not found" in capsys.readouterr().err


def test_server_dying_mid_run_stops_fast_and_a_rerun_completes(videos, tmp_path, capsys):
    run_dir = tmp_path / "r"
    with FaultServer() as srv:
        srv.fail(*["drop"] * 400, at=list(range(3, 403)))  # the server "dies" after 3 answers
        args = [*model_flags(srv.base_url), "--set", "model.give_up_after_s=1"]
        started = time.monotonic()
        code = diffcap("run", str(videos), "--out", str(run_dir), *args, "--concurrency", "2")
        took = time.monotonic() - started
        out = capsys.readouterr().out
        assert code == 4, out
        assert took < 20, took
        assert "endpoint is down" in out
        status = json.loads(_status_json(run_dir))
        assert status["counts"]["failed"] == 0 and status["counts"]["pending"] >= 1
        assert all(d["reason"] == "model_unavailable" for d in status["deferred"])
        paid = len([r for r in srv.requests if r.fault is None])
        srv.reset()
        assert diffcap("run", "--out", str(run_dir), *args) == 0
        assert json.loads(_status_json(run_dir))["counts"]["done"] == 3
        spend = json.loads(_status_json(run_dir))["spend"]
        assert spend["requests"] == paid + len(srv.requests)  # nothing paid twice


def _status_json(run_dir: Path) -> str:
    from diffcap.pipeline.status import run_status

    return json.dumps(run_status(run_dir), default=str)


def test_two_runs_at_once_second_is_refused_nothing_paid_twice(videos, tmp_path):
    run_dir = tmp_path / "r"
    with FaultServer(latency=0.3) as srv:
        cmd = [sys.executable, "-m", "diffcap", "-q", "run", str(videos), "--out", str(run_dir)]
        cmd += model_flags(srv.base_url)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not srv.requests and time.monotonic() < deadline:  # first run is working
            time.sleep(0.1)
        started = time.monotonic()
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 4, second.stderr
        assert time.monotonic() - started < 10
        err = second.stderr.strip()
        assert "is in use by pid" in err and str(first.pid) in err and len(err.splitlines()) == 1
        assert first.wait(timeout=120) == 0, first.stderr.read()
        from diffcap.pipeline.status import run_status

        st = run_status(run_dir)
        assert st["counts"]["done"] == 3
        assert st["spend"]["requests"] == len(srv.requests)  # every request paid once


class Boom(Exception):
    pass


@pytest.mark.allow_error_logs
def test_a_bug_exits_70_with_the_traceback_logged_and_the_video_pending(
    videos, fault_server, tmp_path, monkeypatch, capsys
):
    from diffcap.stages import keyframes as stages

    def broken(*args, **kwargs):
        raise Boom("a bug in a stage")

    monkeypatch.setattr(stages, "keyframes_record", broken)
    run_dir = tmp_path / "r"
    flags = ["--workers", "1", *model_flags(fault_server.base_url)]
    code = diffcap("keyframes", str(videos / "b"), "--out", str(run_dir), *flags[:2])
    out = capsys.readouterr().out
    assert code == 70
    log = run_dir / "logs" / "errors.log"
    assert "Boom: a bug in a stage" in log.read_text() and str(log) in out
    st = json.loads(_status_json(run_dir))
    assert st["counts"] == {"pending": 1, "done": 0, "failed": 0, "filtered": 0}
    monkeypatch.undo()
    assert diffcap("keyframes", str(videos / "b"), "--out", str(run_dir), *flags[:2]) == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--interval", "0"], "keyframes.interval"),
        (["--threshold", "1.5"], "keyframes.threshold"),
        (["--concurrency", "0"], "model.concurrency"),
        (["--set", "engine.max_cost_usd=-1"], "engine.max_cost_usd"),
        (["--set", "filter.min_duration=20", "--max-duration", "10"], "min_duration"),
        (["--set", "keyframes.max_duration=60"], "renamed keyframes.max_seconds"),
        (["--set", "nope.x=1"], "unknown config key"),
    ],
)
def test_bad_config_values_exit_2_with_one_line(videos, tmp_path, capsys, args, needle):
    code = diffcap("run", str(videos), "--out", str(tmp_path / "r"), "--api-base", "x", *args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and needle in err and len(err.splitlines()) == 1, err


def test_precedence_preset_file_set_flags(tmp_path):
    from diffcap.cli.options import config_from_params

    yaml = tmp_path / "c.yaml"
    yaml.write_text("preset: fast-cheap\nkeyframes:\n  interval: 3\n  max_side: 300\n")
    params = {
        "preset": None,
        "config_path": str(yaml),
        "assignments": ("keyframes.interval=4", "keyframes.jpeg_quality=50"),
        "keyframes__interval": 5.0,
    }
    cfg = config_from_params(params)
    assert cfg.keyframes.interval == 5.0  # flag > --set
    assert cfg.keyframes.jpeg_quality == 50  # --set > file/preset (preset says 85)
    assert cfg.keyframes.max_side == 300  # file > preset (preset says 512)
    assert cfg.caption.mode == "fast"  # from the preset named in the file


def test_truncated_input_is_damaged_everywhere(fault_server, tmp_path, capsys):
    from support.videos import truncate

    full = tmp_path / "full.mp4"
    write_video(full, [Scene(3.0, hue=0.1), Scene(3.0, hue=0.6)], size=(96, 64), fps=10)
    cut = truncate(full, tmp_path / "cut.mp4", keep=0.5)
    run_dir = tmp_path / "r"
    assert diffcap("run", str(cut), "--out", str(run_dir), *model_flags(fault_server.base_url)) == 0
    assert "warning: cut: decoded" in capsys.readouterr().out
    (rec,) = iter_records(run_dir, as_dict=True)
    damaged = rec["damaged"]
    assert damaged["decoded_until"] < damaged["expected_duration"]
    summary = rec["captions"][-1]
    assert summary["end"] <= damaged["decoded_until"] + 1e-6  # never past what was decoded
    st = json.loads(_status_json(run_dir))
    assert [d["video_id"] for d in st["damaged"]] == ["cut"]
    assert diffcap("status", str(run_dir)) == 0
    assert "warning: cut: decoded" in capsys.readouterr().out


def test_run_config_is_the_same_file_for_every_command(videos, fault_server, tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("preset: fast-cheap\nkeyframes:\n  interval: 1\n")
    flags = model_flags(fault_server.base_url)[:6]
    out = tmp_path / "c.jsonl"
    assert (
        diffcap("caption", str(videos / "b"), "--out", str(out), "--config", str(cfg), *flags) == 0
    )
    (rec,) = map(json.loads, out.read_text().splitlines())
    assert rec["mode"] == "fast"


def test_stage_contract_under_every_executor(tmp_path):
    """A custom stage list (an async I/O stage, then a CPU stage) runs the same under the
    local and the Ray executor: same rows, same outcomes."""
    pytest.importorskip("ray")
    from diffcap.engine.local import LocalExecutor
    from diffcap.engine.ray_executor import RayExecutor
    from diffcap.engine.rows import VideoRow
    from support.ray_cluster import local_ray
    from support.stages import AsyncUpper, CpuLength, run_rows

    results = {}
    with local_ray():  # workers must import the test stages
        for name, cls in (("local", LocalExecutor), ("ray", RayExecutor)):
            cfg = RunConfig.model_validate({"engine": {"engine": name, "workers": 2}})
            rows = [VideoRow(video_id=f"v{i}", source=f"s{i}", caption=f"c{i}") for i in range(5)]
            rows.append(VideoRow(video_id="bad", source="s", caption="FAIL"))
            got = run_rows(cls, cfg, rows, [AsyncUpper(cfg, tmp_path), CpuLength(cfg, tmp_path)])
            results[name] = sorted((r.video_id, r.status, r.caption, r.reason) for r in got)
    assert results["local"] == results["ray"]
    assert ("bad", "failed", "FAIL", "not_a_video") in results["local"]
    assert ("v1", "pending", "C1:2", None) in results["local"]


def _mount(*args: str) -> None:
    if subprocess.run(["mount", *args], capture_output=True).returncode != 0:
        pytest.skip("mount is not permitted here (needs root)")


@pytest.fixture
def read_only_copy(videos, fault_server, tmp_path):
    """A finished run dir, bind-mounted read-only (root ignores permission bits)."""
    run_dir = tmp_path / "r"
    assert (
        diffcap(
            "run", str(videos / "b"), "--out", str(run_dir), *model_flags(fault_server.base_url)
        )
        == 0
    )
    ro = tmp_path / "ro"
    ro.mkdir()
    _mount("--bind", str(run_dir), str(ro))
    try:
        _mount("-o", "remount,ro,bind", str(ro))
        yield ro
    finally:
        subprocess.run(["umount", str(ro)], check=False)


def test_read_only_run_dir_status_export_work_run_is_one_line(
    read_only_copy, videos, fault_server, tmp_path, capsys
):
    capsys.readouterr()
    assert diffcap("status", str(read_only_copy)) == 0
    assert "done: 1" in capsys.readouterr().out
    out = tmp_path / "export.jsonl"
    assert diffcap("export", str(read_only_copy), "--format", "jsonl", "--out", str(out)) == 0
    assert len(out.read_text().splitlines()) == 1
    flags = model_flags(fault_server.base_url)
    assert diffcap("run", str(videos), "--out", str(read_only_copy), *flags) == 4
    err = capsys.readouterr().err.strip()
    assert "read only" in err and len(err.splitlines()) == 1, err


def test_full_disk_stops_with_one_line_and_marks_nothing_failed(
    videos, fault_server, tmp_path, capsys
):
    small = tmp_path / "small"
    small.mkdir()
    _mount("-t", "tmpfs", "-o", "size=400k", "tmpfs", str(small))
    try:
        big = tmp_path / "big"
        big.mkdir()
        for i in range(6):  # enough keyframe images to fill 400 kB
            write_video(big / f"v{i}.mp4", default_scenes(4, 8.0), size=(640, 480), fps=10)
        args = [*model_flags(fault_server.base_url), "--format", "png", "--workers", "1"]
        code = diffcap("run", str(big), "--out", str(small / "r"), *args)
        captured = capsys.readouterr()
        assert code == 4, captured
        text = (captured.out + captured.err).lower()
        assert "no space left" in text or "disk full" in text or "disk_full" in text
        assert "Traceback" not in captured.err
        status_failed = 0
        if (small / "r" / "run.sqlite").is_file():
            import sqlite3

            conn = sqlite3.connect(small / "r" / "run.sqlite")
            status_failed = conn.execute("SELECT COUNT(*) FROM videos WHERE status='failed'")
            status_failed = status_failed.fetchone()[0]
            conn.close()
        assert status_failed == 0
    finally:
        subprocess.run(["umount", str(small)], check=False)


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out.update(int(c) for c in text)
    return out


def test_ctrl_c_is_one_line_workers_gone_and_a_rerun_resumes(videos, tmp_path):
    import signal

    run_dir = tmp_path / "r"
    with FaultServer(latency=0.5) as srv:
        cmd = [sys.executable, "-m", "diffcap", "run", str(videos), "--out", str(run_dir)]
        cmd += [*model_flags(srv.base_url), "--workers", "2", "--no-progress"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not srv.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = _children(proc.pid)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130
        text = err.decode()
        assert "Traceback" not in text, text
        # The first Ctrl-C lets the answers in flight finish (tests/cli/test_cli_sigint.py)
        assert "Ctrl-C again to stop now" in text
        assert "stopped by Ctrl-C after the answers in flight; rerun" in out.decode()
        gone_by = time.monotonic() + 2.0
        while time.monotonic() < gone_by and any(Path(f"/proc/{w}").exists() for w in workers):
            time.sleep(0.1)
        assert not [w for w in workers if Path(f"/proc/{w}").exists()]
        srv.reset()
        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        from diffcap.pipeline.status import run_status

        st = run_status(run_dir)
        assert st["counts"]["done"] == 3


def test_unreachable_download_is_transient_not_failed(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run_dir = tmp_path / "r"
    url = f"http://127.0.0.1:{port}/clip.mp4"
    assert diffcap("keyframes", url, "--out", str(run_dir)) == 4  # stopped, rerun resumes
    st = json.loads(_status_json(run_dir))
    assert st["counts"]["failed"] == 0 and st["counts"]["pending"] == 1
    assert st["deferred"][0]["reason"] == "download_unavailable"


def test_read_only_run_dir_left_by_a_killed_run_is_readable(videos, fault_server, tmp_path):
    """A run killed before its last checkpoint leaves commits in run.sqlite-wal; a read-only
    open must still see them."""
    import shutil
    import sqlite3

    run_dir = tmp_path / "r"
    assert diffcap("keyframes", str(videos / "b"), "--out", str(run_dir)) == 0
    frozen = tmp_path / "frozen"
    frozen.mkdir()
    conn = sqlite3.connect(run_dir / "run.sqlite")  # as a killed run leaves it: WAL not merged
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("UPDATE meta SET value = value WHERE key = 'pipeline'")
    conn.execute("INSERT INTO meta (key, value) VALUES ('marker', '1')")
    conn.commit()
    for name in ("run.sqlite", "run.sqlite-wal"):
        shutil.copyfile(run_dir / name, frozen / name)
    conn.close()
    assert (frozen / "run.sqlite-wal").stat().st_size > 0
    ro = tmp_path / "ro"
    ro.mkdir()
    _mount("--bind", str(frozen), str(ro))
    try:
        _mount("-o", "remount,ro,bind", str(ro))
        from diffcap.store import RunStore

        store = RunStore.open_readonly(ro / "run.sqlite")
        assert store.get_meta("marker") == 1 and store.counts()["done"] == 1
        store.close()
    finally:
        subprocess.run(["umount", str(ro)], check=False)


@pytest.mark.parametrize("case", ["yaml_set", "binary_config", "not_a_database"])
def test_garbage_inputs_are_one_line_errors_not_bugs(videos, tmp_path, capsys, case):
    run_dir = tmp_path / "r"
    args = ["run", str(videos / "b"), "--out", str(run_dir), "--api-base", "http://127.0.0.1:1/v1"]
    if case == "yaml_set":
        args += ["--set", "keyframes.embedder=[1,2"]
    elif case == "binary_config":
        bad = tmp_path / "c.yaml"
        bad.write_bytes(b"\xff\xfe\x00\x81garbage")
        args += ["--config", str(bad)]
    else:
        run_dir.mkdir()
        (run_dir / "run.sqlite").write_bytes(b"this is not sqlite" * 100)
    code = diffcap(*args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "internal error" not in err, err
    if case == "not_a_database":
        assert diffcap("status", str(run_dir)) == 2


def test_a_refused_command_changes_nothing_in_the_run_dir(videos, fault_server, tmp_path):
    run_dir = tmp_path / "r"
    flags = model_flags(fault_server.base_url)
    assert diffcap("run", str(videos / "b"), "--out", str(run_dir), *flags) == 0
    before = (run_dir / "config.yaml").read_text()
    assert diffcap("keyframes", str(videos / "b"), "--out", str(run_dir)) == 2  # other stages
    assert (run_dir / "config.yaml").read_text() == before


def test_dedup_barrier_gives_the_same_outcome_under_every_executor(videos, fault_server, tmp_path):
    """short_caption -> dedup (a barrier on the driver) -> keyframes -> caption: the fault
    server answers every short caption alike, so all but the first video are duplicates,
    under the local and the Ray executor alike."""
    pytest.importorskip("ray")
    pytest.importorskip("sentence_transformers")
    flags = [*model_flags(fault_server.base_url), "--dedup"]
    outcomes = {}
    for engine in ("local", "ray"):
        run_dir = tmp_path / engine
        assert diffcap("run", str(videos), "--out", str(run_dir), *flags, "--engine", engine) == 0
        st = json.loads(_status_json(run_dir))
        filtered = [json.loads(x) for x in (run_dir / "filtered.jsonl").read_text().splitlines()]
        dups = sorted((f["video_id"], f["reason"], f["duplicate_of"]) for f in filtered)
        outcomes[engine] = (st["counts"], dups, comparable(run_dir))
    assert outcomes["local"] == outcomes["ray"]
    counts, dups, records = outcomes["local"]
    assert counts["done"] == 1 and counts["filtered"] == 2 and len(records) == 1
    assert {d[1] for d in dups} == {"duplicate"}
