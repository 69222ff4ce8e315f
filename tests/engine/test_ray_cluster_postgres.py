"""The request cache in PostgreSQL on a simulated multi-node Ray cluster (every node on
loopback): a worker node lost mid-run loses nothing, and the only calls paid twice are those
in flight on it, with no SQLite file written by any worker."""

from __future__ import annotations

import collections
import sqlite3

import pytest

import support.postgres as postgres
import support.servers as servers
from diffcap.config import RunConfig
from diffcap.pipeline import iter_records, run_dataset
from diffcap.video.synth import default_scenes, write_video
from support.ray_cluster import lose_node_when, simulated_cluster

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

_fault_server_session = servers._fault_server_session
fault_server = servers.fault_server
pg_server = postgres.pg_server
pg_url = postgres.pg_url


@pytest.fixture
def cluster():
    """A head (the driver) and two worker nodes of 2 CPUs."""
    with simulated_cluster() as (c, workers):
        assert {n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]} == {"127.0.0.1"}
        yield c, workers


def _cfg(url: str, cache_url: str | None, engine: str) -> RunConfig:
    return RunConfig.model_validate(
        {
            "model": {"api_base": url, "model": "loopback", "api_key": "k", "concurrency": 2},
            "engine": {"engine": engine, "workers": 2, "model_actors": 2, "cache_url": cache_url},
            "keyframes": {"interval": 1.0},
        }
    )


def _captions(run_dir) -> list[tuple]:
    return [
        (r["video_id"], [(c["idx"], c["content"]) for c in r["captions"]])
        for r in iter_records(run_dir, as_dict=True)
    ]


@pytest.mark.slow  # ~30 s: a three-node cluster, a local and a Ray run
def test_a_lost_node_loses_no_answer_kept_in_postgresql(
    cluster, fault_server, pg_server, pg_url, tmp_path
):
    c, workers = cluster
    videos = tmp_path / "videos"
    videos.mkdir()
    for i in range(5):  # distinct sizes: no two videos share a request
        write_video(videos / f"clip{i}.mp4", default_scenes(3, 3.0), size=(64 + 8 * i, 48), fps=10)
    local = run_dataset(
        [str(videos)],
        tmp_path / "local",
        _cfg(fault_server.base_url, None, "local"),
        progress=False,
    )
    calls = len(fault_server.answered)
    fault_server.reset()
    fault_server.latency = 0.4  # the node dies with calls in flight
    loss = lose_node_when(fault_server, c, workers[1], answered=calls // 3)
    run_dir = tmp_path / "ray"
    cfg = _cfg(fault_server.base_url, pg_url, "ray")
    report = run_dataset([str(videos)], run_dir, cfg, progress=False)
    loss.join()
    assert loss.answered_at is not None and loss.answered_at < calls, "not lost mid-run"
    assert report.counts == local.counts and report.done_now == 5
    assert _captions(run_dir) == _captions(tmp_path / "local")
    paid = collections.Counter(fault_server.answered)
    assert len(paid) == calls and sum(n - 1 for n in paid.values()) <= 2 * 2
    db = pg_url.rsplit("/", 1)[1]
    assert pg_server.sql("SELECT COUNT(*) FROM diffcap_requests", db=db)[0][0] == calls
    with sqlite3.connect(run_dir / "run.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 0
    assert report.requests_new == calls  # spend read from PostgreSQL, each call once
