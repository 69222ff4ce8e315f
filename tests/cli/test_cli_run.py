"""`diffcap run` / `diffcap status` as real subprocesses: SIGKILL at several points and
resume (exactly-once output, no answered request sent twice), exit codes, config errors."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from diffcap.video.synth import Scene, write_video
from support.servers import FaultServer

N_VIDEOS = 8
LATENCY = 0.15
#: Time a client may need between the server finishing a response and committing it to the
#: cache; a request answered earlier than this before the kill must never be sent again.
GRACE = 0.25


def digest_reply(body) -> str:
    return "caption " + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]


def body_hash(received) -> str:
    return hashlib.sha256(json.dumps(received.body, sort_keys=True).encode()).hexdigest()


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_videos")
    for i in range(N_VIDEOS):
        write_video(
            root / f"clip{i:02d}.mp4",
            [Scene(1.5, hue=i / N_VIDEOS), Scene(1.5, hue=(i / N_VIDEOS + 0.5) % 1)],
            size=(64, 64),
            fps=10,
        )
    return root


def command(videos, run_dir, srv, *extra):
    return [
        sys.executable,
        "-m",
        "diffcap",
        "-q",
        "run",
        str(videos),
        "--out",
        str(run_dir),
        "--backend",
        "openai",
        "--api-base",
        srv.base_url,
        "--model",
        "tiny",
        "--api-key",
        "test",
        "--embedder",
        "weightless",
        "--workers",
        "1",
        "--concurrency",
        "2",
        "--model-max-retries",
        "0",
        "--no-progress",
        *extra,
    ]


def env():
    e = dict(os.environ)
    e.setdefault("HF_HUB_OFFLINE", "1")
    return e


def records(run_dir):
    out = []
    for shard in sorted((run_dir / "records").glob("records-*.jsonl")):
        out += [json.loads(x)["video_id"] for x in shard.read_text().splitlines()]
    return out


def test_sigkill_and_resume_exactly_once(videos, tmp_path):
    run_dir = tmp_path / "run"
    kills = []  # (first request index of the attempt, kill time)
    with FaultServer(latency=LATENCY, reply=digest_reply) as srv:
        for k in (3, 7, 6):  # SIGKILL after k more requests reached the server
            base = len(srv.requests)
            proc = subprocess.Popen(
                command(videos, run_dir, srv),
                env=env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            deadline = time.monotonic() + 60
            while len(srv.requests) < base + k and proc.poll() is None:
                assert time.monotonic() < deadline, "the run never reached the server"
                time.sleep(0.005)
            killed_at = time.monotonic()
            proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate(timeout=30)
            assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
            kills.append((base, killed_at))
        final_base = len(srv.requests)
        final = subprocess.run(
            command(videos, run_dir, srv, "--json"),
            env=env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        received = list(srv.requests)
    assert final.returncode == 0, final.stderr[-3000:]
    report = json.loads(final.stdout)
    assert report["counts"] == {"pending": 0, "done": N_VIDEOS, "failed": 0, "filtered": 0}
    # Every request was answered exactly once overall: killed attempts' answers that had been
    # stored were replayed, not re-sent (checked precisely below).
    assert report["requests_new"] + report["requests_cached"] > 0

    ids = records(run_dir)
    assert sorted(ids) == [f"clip{i:02d}" for i in range(N_VIDEOS)]  # each exactly once
    table = pq.read_table(run_dir / "records.parquet")
    assert sorted(table.column("video_id").to_pylist()) == sorted(ids)

    # No request that had been answered (well) before a kill reached the server again.
    first_seen: dict[str, tuple[int, float]] = {}
    ends = [b for b, _ in kills[1:]] + [final_base]
    for attempt_end, (base, killed_at) in zip(ends, kills, strict=True):
        for r in received[base:attempt_end]:
            h = body_hash(r)
            if h not in first_seen and r.at + LATENCY < killed_at - GRACE:
                first_seen[h] = (r.index, killed_at)
    repeats = [
        r.index
        for r in received[kills[0][0] :]
        if body_hash(r) in first_seen and r.index > first_seen[body_hash(r)][0]
    ]
    detail = [
        (r.index, round(r.at - received[0].at, 3), r.prompt[:50])
        for r in received
        if body_hash(r) in {body_hash(received[i]) for i in repeats}
    ]
    kill_times = [round(k - received[0].at, 3) for _, k in kills]
    assert repeats == [], f"answered requests sent again: {detail}, kills at {kill_times}"
    assert len(first_seen) > 0  # the kills did land after some answers


def test_status_command(videos, tmp_path):
    from diffcap.config.resolve import resolve_config
    from diffcap.pipeline.runner import run_dataset

    run_dir = tmp_path / "run"
    with FaultServer(reply=digest_reply) as srv:
        srv.fail("status", at=0, status=400)
        cfg = resolve_config(
            None,
            None,
            {
                "model.api_base": srv.base_url,
                "model.model": "tiny",
                "model.api_key": "test",
                "model.max_retries": 0,
                "model.concurrency": 4,
                "keyframes.embedder": "weightless",
                "engine.workers": 1,
            },
        )
        report = run_dataset([str(videos)], run_dir, cfg, progress=False)
    assert report.counts["failed"] == 1
    st = subprocess.run(
        [sys.executable, "-m", "diffcap", "status", str(run_dir), "--json"],
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    data = json.loads(st.stdout)
    assert data["counts"]["done"] == N_VIDEOS - 1 and data["failures_total"] == 1
    assert data["failures"][0]["stage"] == "caption"
    assert data["spend"]["requests"] > 0
    assert data["last_run"]["done_now"] == N_VIDEOS - 1
    text = subprocess.run(
        [sys.executable, "-m", "diffcap", "status", str(run_dir)],
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "failed: 1" in text and "400" in text and "estimated cost" in text


def test_cost_cap_exit_code_and_resume(videos, tmp_path):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"tiny": {"input": 1e6, "output": 0.0}}))
    e = {**env(), "DIFFCAP_PRICES": str(prices)}
    run_dir = tmp_path / "run"
    with FaultServer(reply=digest_reply) as srv:
        capped = subprocess.run(
            command(videos, run_dir, srv, "--max-cost-usd", "100"),
            env=e,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert capped.returncode == 4, capped.stderr[-3000:]  # 3 is "no usable model"
        assert "stopped: the --max-cost-usd cap was reached" in capped.stdout
        sent = len(srv.requests)
        more = subprocess.run(
            command(videos, run_dir, srv, "--max-cost-usd", "1e12"),
            env=e,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert more.returncode == 0, more.stderr[-3000:]
        bodies = [body_hash(r) for r in srv.requests]
    assert len(bodies) > sent and len(bodies) == len(set(bodies))
    assert sorted(records(run_dir)) == [f"clip{i:02d}" for i in range(N_VIDEOS)]


def test_config_errors_and_saved_config(videos, tmp_path):
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "diffcap",
            "run",
            str(videos),
            "--out",
            str(tmp_path / "r"),
            "--set",
            "keyframes.intervall=2",
        ],
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2  # bad config values are bad usage
    assert "unknown config key 'keyframes.intervall'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
    cfg = tmp_path / "run.yaml"
    cfg.write_text("model:\n  concurrency: 3\n  bogus: 1\n")
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "diffcap",
            "run",
            str(videos),
            "--out",
            str(tmp_path / "r"),
            "--config",
            str(cfg),
        ],
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "'model.bogus'" in bad.stderr
    assert not (tmp_path / "r" / "run.sqlite").exists()  # refused before the run started


def test_flags_build_the_config():
    from click.testing import CliRunner

    from diffcap.cli.options import config_from_params
    from diffcap.cli.run import run

    # Parse only (no run): resolve the config the command would run with.
    ctx = run.make_context(
        "run",
        [
            "x",
            "--out",
            "o",
            "--interval",
            "1.5",
            "--no-dedup",
            "--engine",
            "ray",
            "--input-extensions",
            ".mp4",
            "--input-extensions",
            ".mkv",
            "--summary-enabled",
            "--set",
            "keyframes.interval=9",  # an explicit flag beats --set
            "--set",
            "model.max_tokens=77",
            "--max-duration",
            "30",
            "--max-seconds",
            "20",
        ],
    )
    params = dict(ctx.params)
    cfg = config_from_params(params)
    # every config parameter was popped; what is left is the command's own
    assert set(params) == {"inputs", "out", "retry_failed", "no_progress", "as_json"}
    assert cfg.keyframes.interval == 1.5
    assert cfg.filter.dedup is False
    assert cfg.engine.engine == "ray"
    assert cfg.input.extensions == [".mp4", ".mkv"]
    assert cfg.summary.enabled is True
    assert cfg.model.max_tokens == 77
    # two names for two things: drop longer videos / process only the first N seconds
    assert cfg.filter.max_duration == 30.0 and cfg.keyframes.max_seconds == 20.0
    # flags not given leave the defaults alone
    defaults = config_from_params({})
    assert cfg.model.concurrency == defaults.model.concurrency
    assert cfg.keyframes.threshold == defaults.keyframes.threshold
    assert CliRunner().invoke(run, ["--help"]).exit_code == 0


def test_preset_then_config_then_set_then_flags(videos, tmp_path):
    """The documented precedence, through the real command: what the run saved."""
    import yaml

    conf = tmp_path / "run.yaml"
    conf.write_text("preset: fast-cheap\nkeyframes:\n  interval: 3\n  max_side: 300\n")
    run_dir = tmp_path / "r"
    with FaultServer(reply=digest_reply) as srv:
        args = ["--config", str(conf), "--set", "keyframes.interval=4"]
        args += ["--set", "keyframes.jpeg_quality=50", "--interval", "1"]
        done = subprocess.run(
            command(videos / "clip00.mp4", run_dir, srv, *args),
            env=env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["keyframes"]["interval"] == 1.0  # flag > --set
    assert saved["keyframes"]["jpeg_quality"] == 50  # --set > file and preset
    assert saved["keyframes"]["max_side"] == 300  # file > preset
    assert saved["caption"]["mode"] == "fast"  # the preset the file names
    assert saved["model"]["max_tokens"] == 512  # preset > defaults (1024)


@pytest.mark.slow
def test_sigkill_leaves_no_worker_processes(videos, tmp_path):
    """Keyframe pool workers (spawned processes) exit when the runner is SIGKILLed."""
    with FaultServer(latency=LATENCY, reply=digest_reply) as srv:
        cmd = command(videos, tmp_path / "run", srv)
        cmd[cmd.index("--workers") + 1] = "2"
        proc = subprocess.Popen(
            cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while not srv.requests and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        children = subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
        ).stdout.split()
        proc.kill()
        proc.wait(30)
    assert children, "the run had no worker processes"
    deadline = time.monotonic() + 20
    while any(_running(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [c for c in children if _running(c)]
    for pid in alive:  # clean up before failing
        os.kill(int(pid), signal.SIGKILL)
    assert alive == []


def _running(pid: str) -> bool:
    """Alive and not a zombie (a container's init may reap late)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(line.startswith("State:") and "Z" in line for line in f)
    except FileNotFoundError:
        return False
