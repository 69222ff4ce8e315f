"""The Ray executor on a simulated multi-node cluster (``ray.cluster_utils.Cluster``, every
node on loopback): model pools sized by the declared GPUs, a worker node lost mid-run, and
records equal to the local executor's."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from diffcap.config import RunConfig
from diffcap.engine.control import RunControl
from support.ray_cluster import lose_node_when, simulated_cluster
from support.servers import _fault_server_session, fault_server  # noqa: F401 - fixtures
from support.stages import NoSpend

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")


@pytest.fixture(scope="module")
def cluster():
    """A head (the driver, one CPU) and two worker nodes with 2 CPUs and one fake GPU each."""
    with simulated_cluster(gpus_per_worker=1) as (c, workers):
        yield c, workers


def _cfg(**engine) -> RunConfig:
    return RunConfig.model_validate({"engine": {"engine": "ray", **engine}})


def test_every_node_of_the_cluster_is_on_loopback(cluster):
    addresses = {n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]}
    assert addresses == {"127.0.0.1"}


def test_gpu_stage_gets_one_actor_per_declared_gpu(cluster, tmp_path):
    from diffcap.engine.ray_executor import RayExecutor
    from diffcap.engine.rows import VideoRow
    from support.stages import GpuTag

    _c, workers = cluster
    gpu_nodes = {w.node_id for w in workers}
    for cap, expect in ((None, 2), (1, 1)):
        cfg = _cfg(model_actors=cap)
        ex = RayExecutor(cfg, progress=False)
        stage = GpuTag(cfg, tmp_path)
        (plan,) = ex.plans(ray, [stage])
        assert (plan.min_size, plan.max_size, plan.gpus) == (expect, expect, 1.0)
        rows = [VideoRow(video_id=f"v{i}", source=f"s{i}") for i in range(12)]
        got: list[VideoRow] = []
        ex.run(rows, [stage], got.append, RunControl(NoSpend(), cfg.engine))
        assert sorted(r.video_id for r in got) == sorted(r.video_id for r in rows)
        tags = {tuple(r.caption.split("|")[:2]) for r in got}
        assert len(tags) == expect  # that many actors did the work...
        assert {node for node, _pid in tags} <= gpu_nodes  # ...each on a node with a GPU
        assert all(r.caption.endswith("[0]") for r in got)  # ...holding one GPU


def test_a_stage_asking_more_gpus_than_any_node_has_is_refused(cluster, tmp_path):
    from diffcap.engine.ray_executor import plan_pool
    from diffcap.engine.stage import Resources
    from diffcap.errors import ConfigError

    nodes = [n["Resources"] for n in ray.nodes() if n["Alive"]]
    assert sum(n.get("GPU", 0) for n in nodes) == 2
    with pytest.raises(ConfigError, match="no Ray node has that many"):
        plan_pool("caption", Resources(cpus=0, gpus=2), _cfg().engine, nodes)
    api = plan_pool("caption", Resources(cpus=0, concurrency=8), _cfg().engine, nodes)
    assert (api.min_size, api.batch_size, api.spread) == (3, 8, True)  # one per node
    auto = plan_pool("caption", Resources(cpus=0, wants_gpu=True), _cfg().engine, nodes)
    assert auto.gpus == 1.0 and auto.max_size == 2  # device auto: the GPUs are used
    cpu = plan_pool("keyframes", Resources(cpus=1), _cfg().engine, nodes)
    assert (cpu.min_size, cpu.max_size, cpu.gpus) == (1, 5, 0.0)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from diffcap.video.synth import default_scenes, write_video

    folder = tmp_path_factory.mktemp("cluster_videos")
    for i in range(6):  # distinct sizes: no two videos share a request
        write_video(folder / f"clip{i}.mp4", default_scenes(3, 3.0), size=(64 + 8 * i, 48), fps=10)
    return folder


def _records(run_dir: Path) -> list[dict]:
    from diffcap.pipeline import iter_records

    out = []
    for rec in iter_records(run_dir, as_dict=True):
        rec = dict(rec)
        rec.pop("usage", None)
        rec["provenance"] = {k: v for k, v in rec["provenance"].items() if k != "created"}
        out.append(rec)
    return out


def _run_cfg(url: str, engine: str) -> RunConfig:
    return RunConfig.model_validate(
        {
            "model": {"api_base": url, "model": "loopback", "api_key": "k", "concurrency": 2},
            "engine": {"engine": engine, "workers": 2, "model_actors": 2},
            "keyframes": {"interval": 1.0},
        }
    )


def test_a_worker_node_lost_mid_run_loses_and_duplicates_nothing(
    cluster,
    videos,
    fault_server,  # noqa: F811
    tmp_path,
):
    from diffcap.pipeline import run_dataset

    c, workers = cluster
    local = run_dataset(
        [str(videos)],
        tmp_path / "local",
        _run_cfg(fault_server.base_url, "local"),
        progress=False,
    )
    calls = len(fault_server.answered)
    fault_server.reset()
    fault_server.latency = 0.4  # long enough that the node dies with calls in flight
    loss = lose_node_when(fault_server, c, workers[1], answered=calls // 3)
    report = run_dataset(
        [str(videos)],
        tmp_path / "ray",
        _run_cfg(fault_server.base_url, "ray"),
        progress=False,
    )
    loss.join()
    assert loss.answered_at is not None and loss.answered_at < calls, "not lost mid-run"
    assert report.counts == local.counts and report.counts["done"] == 6
    assert report.done_now == 6  # every video committed once
    assert _records(tmp_path / "ray") == _records(tmp_path / "local")
    paid = collections.Counter(fault_server.answered)
    twice = sum(n - 1 for n in paid.values())
    assert len(paid) == calls  # every call of the run was answered...
    # ...and the only calls paid twice are those in flight on the lost node: at most
    # model.concurrency (2) for each model actor it held (2 actors; both may have been there).
    assert twice <= 2 * 2, (twice, loss.answered_at)
