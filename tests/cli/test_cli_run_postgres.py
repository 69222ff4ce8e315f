"""`diffcap run --engine-cache-url postgresql://...`: every answer lands in PostgreSQL (not in
run.sqlite), a re-caption replays from there without a request, the spend the run reports
and `status` shows come from there, under the local executor and Ray; a cache that is down
or another than the run's own stops the run before any video, in one line."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest

import support.postgres as postgres
import support.servers as servers
from diffcap.video.synth import default_scenes, write_video
from support.cli import diffcap

_fault_server_session = servers._fault_server_session
fault_server = servers.fault_server

pg_server = postgres.pg_server
pg_url = postgres.pg_url


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pg_videos")
    for i, (n, seconds, width) in enumerate([(3, 4.0, 96), (2, 3.0, 80)]):
        write_video(folder / f"clip{i}.mp4", default_scenes(n, seconds), size=(width, 64), fps=10)
    return folder


def flags(url: str, cache_url: str) -> list[str]:
    model = ["--api-base", url, "--model", "loopback", "--api-key", "k", "--interval", "1"]
    return [*model, "--embedder", "weightless", "--engine-cache-url", cache_url]


def pg_rows(pg_server, cache_url: str) -> int:
    db = cache_url.rsplit("/", 1)[1]
    return int(pg_server.sql("SELECT COUNT(*) FROM diffcap_requests", db=db)[0][0])


def sqlite_rows(run_dir: Path) -> int:
    with sqlite3.connect(run_dir / "run.sqlite") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0])


def report(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def status(run_dir: Path) -> dict:
    from diffcap.pipeline.status import run_status

    return run_status(run_dir)


def test_run_caches_in_postgresql_and_a_recaption_replays_it(
    videos,
    tmp_path,
    fault_server,
    pg_server,
    pg_url,
    capsys,
):
    run_dir = tmp_path / "run"
    args = ["run", str(videos), "--out", str(run_dir), *flags(fault_server.base_url, pg_url)]
    assert diffcap(*args, "--json") == 0
    first = report(capsys)
    paid = len(fault_server.requests)
    assert first["counts"]["done"] == 2 and paid > 0
    assert pg_rows(pg_server, pg_url) == paid and sqlite_rows(run_dir) == 0
    assert first["requests_new"] == paid and first["requests_cached"] == 0
    st = status(run_dir)
    assert st["spend"]["requests"] == paid and st["request_cache"].startswith("postgresql://")
    # Re-caption everything (as if the records were lost): every answer is replayed.
    with sqlite3.connect(run_dir / "run.sqlite") as conn:
        conn.execute("UPDATE videos SET status = 'pending'")
    assert diffcap(*args, "--json") == 0
    again = report(capsys)
    assert len(fault_server.requests) == paid  # not one new request
    assert again["requests_new"] == 0 and again["requests_cached"] == paid
    assert again["done_now"] == 2 and pg_rows(pg_server, pg_url) == paid
    assert status(run_dir)["spend"]["requests"] == paid
    # A rerun without the flag starts from the run's saved config: the same cache, no request
    model_only = flags(fault_server.base_url, pg_url)[:-2]
    assert diffcap("run", str(videos), "--out", str(run_dir), *model_only) == 0
    capsys.readouterr()
    assert len(fault_server.requests) == paid
    # Another base config without the PostgreSQL cache would pay again: refused, exit 2.
    other = tmp_path / "other.yaml"
    other.write_text("keyframes: {interval: 1}\n")
    assert (
        diffcap("run", str(videos), "--out", str(run_dir), *model_only, "--config", str(other)) == 2
    )
    err = capsys.readouterr().err
    # (user info is redacted from every message: a bare user name may be a token)
    assert "its request cache is postgresql://[redacted]@127.0.0.1" in err
    assert len(fault_server.requests) == paid
    # Clip summaries exported from the run go through its PostgreSQL cache too.
    from diffcap.config import ModelConfig
    from diffcap.export import ExportOptions, export

    model = ModelConfig(api_base=fault_server.base_url, model="loopback", api_key="k")
    opts = ExportOptions(progress=False, model=model, window=2, stride=1)
    assert export(run_dir, "clips", tmp_path / "a.jsonl", opts).items > 0
    new = len(fault_server.requests) - paid  # (a window may repeat a run's request)
    assert new > 0 and pg_rows(pg_server, pg_url) == paid + new and sqlite_rows(run_dir) == 0
    export(run_dir, "clips", tmp_path / "b.jsonl", opts)
    assert len(fault_server.requests) == paid + new  # replayed from PostgreSQL
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()


def test_a_cache_that_is_down_stops_the_run_before_any_video(
    videos,
    tmp_path,
    fault_server,
    pg_url,
    capsys,
):
    down = f"postgresql://u:pa55word-x@127.0.0.1:{servers.free_port()}/db"
    run_dir = tmp_path / "run"
    assert (
        diffcap("run", str(videos), "--out", str(run_dir), *flags(fault_server.base_url, down)) == 4
    )
    err = capsys.readouterr().err.strip()
    assert "127.0.0.1:" in err and "unreachable" in err and len(err.splitlines()) == 1
    assert "pa55word-x" not in err
    assert fault_server.requests == []  # nothing was paid
    assert not run_dir.exists()  # a first run that failed its pre-flight leaves nothing
    # A URL that never connected bound nothing: the right one is accepted.
    args = ["run", str(videos), "--out", str(run_dir), *flags(fault_server.base_url, pg_url)]
    assert diffcap(*args) == 0
    assert status(run_dir)["counts"]["done"] == 2
    assert "pa55word-x" not in (run_dir / "config.yaml").read_text()


@pytest.fixture
def no_ray_left():
    yield
    if "ray" in sys.modules:
        sys.modules["ray"].shutdown()


def test_ray_workers_write_the_cache_to_postgresql(
    videos,
    tmp_path,
    fault_server,
    pg_server,
    pg_url,
    capsys,
    no_ray_left,
):
    pytest.importorskip("ray")
    run_dir = tmp_path / "ray"
    args = ["run", str(videos), "--out", str(run_dir), *flags(fault_server.base_url, pg_url)]
    assert diffcap(*args, "--engine", "ray", "--workers", "2", "--json") == 0
    out = report(capsys)
    paid = len(fault_server.requests)
    assert out["counts"]["done"] == 2 and out["requests_new"] == paid > 0
    assert pg_rows(pg_server, pg_url) == paid and sqlite_rows(run_dir) == 0


def test_the_cost_cap_counts_the_spend_in_postgresql(
    videos, tmp_path, fault_server, pg_server, pg_url, capsys, monkeypatch
):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"loopback": {"input": 1e6, "output": 0.0}}))  # $1/token
    monkeypatch.setenv("DIFFCAP_PRICES", str(prices))
    run_dir = tmp_path / "run"
    args = ["run", str(videos), "--out", str(run_dir), *flags(fault_server.base_url, pg_url)]
    args += ["--concurrency", "1", "--json"]
    assert diffcap(*args, "--max-cost-usd", "150") == 4
    first = report(capsys)
    # the cap is hard: what was paid (in PostgreSQL) stays within it
    assert first["stopped_by_budget"] and 1 <= len(fault_server.requests) < 10
    assert first["total_cost_usd"] <= 150 and first["cost_usd"] == first["total_cost_usd"]
    assert pg_rows(pg_server, pg_url) == len(fault_server.requests) and sqlite_rows(run_dir) == 0
    paid = len(fault_server.requests)
    assert diffcap(*args, "--max-cost-usd", "1e9") == 0
    second = report(capsys)
    assert second["counts"]["done"] == 2 and second["requests_cached"] == paid
    assert pg_rows(pg_server, pg_url) == len(fault_server.requests)  # nothing paid twice
