"""The Ray engine on a local Ray instance: same records as the local engine."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest

from diffcap.config import RunConfig
from support import ray_cluster
from support.servers import _fault_server_session, fault_server  # noqa: F401 - fixtures

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from diffcap.video.synth import default_scenes, write_video

    folder = tmp_path_factory.mktemp("ray_videos")
    # Distinct sizes: no two videos share a keyframe image, so no two requests are identical
    # (identical requests in flight at once would both be sent, in either engine).
    for i, (n, seconds, width) in enumerate([(3, 6.0, 96), (2, 4.0, 80), (4, 8.0, 112)]):
        write_video(folder / f"clip{i}.mp4", default_scenes(n, seconds), size=(width, 64), fps=10)
    return folder


def _cfg(url: str, engine: str) -> RunConfig:
    return RunConfig.model_validate(
        {
            "model": {"api_base": url, "model": "loopback", "api_key": "k", "concurrency": 4},
            "engine": {"engine": engine, "workers": 2},
            "keyframes": {"interval": 1.0},
        }
    )


def _records(run_dir: Path) -> list[dict]:
    from diffcap.pipeline import iter_records

    out = []
    for rec in iter_records(run_dir, as_dict=True):
        rec = dict(rec)
        rec.pop("usage", None)  # cached vs new requests differ by design
        rec["provenance"] = {k: v for k, v in rec["provenance"].items() if k != "created"}
        out.append(rec)
    return out


def test_ray_engine_writes_the_same_records_as_local(
    local_ray,
    videos,
    fault_server,  # noqa: F811
    tmp_path,
):
    from diffcap.pipeline import run_dataset

    local = run_dataset(
        [str(videos)], tmp_path / "local", _cfg(fault_server.base_url, "local"), progress=False
    )
    local_requests = len(fault_server.requests)
    fault_server.reset()
    remote = run_dataset(
        [str(videos)], tmp_path / "ray", _cfg(fault_server.base_url, "ray"), progress=False
    )
    assert local.counts == remote.counts and remote.counts["done"] == 3
    assert len(fault_server.requests) == local_requests > 3  # same calls, made from Ray actors
    # Bounded in flight: one model actor per node (one node here) x model.concurrency (4).
    assert 1 <= fault_server.max_in_flight <= 4
    a, b = _records(tmp_path / "local"), _records(tmp_path / "ray")
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    for rec in b:  # keyframe files resolve inside the ray run dir
        assert all((tmp_path / "ray" / "records" / k["file"]).is_file() for k in rec["keyframes"])


def test_ray_rerun_replays_the_request_cache(
    local_ray,
    videos,
    fault_server,  # noqa: F811
    tmp_path,
):
    from diffcap.pipeline import run_dataset
    from diffcap.store import RunStore

    run_dir = tmp_path / "run"
    run_dataset([str(videos)], run_dir, _cfg(fault_server.base_url, "ray"), progress=False)
    first = _records(run_dir)
    paid = len(fault_server.requests)
    # Forget the finished videos but keep the request cache: a rerun pays nothing.
    store = RunStore.open(run_dir / "run.sqlite")
    with store.transaction() as conn:
        conn.execute("DELETE FROM records")
        conn.execute("UPDATE videos SET status = 'pending'")
    store.close()
    run_dataset([str(videos)], run_dir, _cfg(fault_server.base_url, "ray"), progress=False)
    assert len(fault_server.requests) == paid
    assert _records(run_dir) == first


def test_row_spool_streams_rows_in_files_and_blocks_then_cleans_up(tmp_path):
    """The driver writes rows to spool files of a fixed size (never a list of them all) and
    Ray's read tasks yield them back, in order, in blocks of ``rows_per_block``."""
    from diffcap.engine.ray_io import RowSpool, read_spool
    from diffcap.engine.rows import VideoRow

    made = []

    def rows():  # a generator: the spool must not need len()
        for i in range(8):
            made.append(i)
            yield VideoRow(video_id=f"v{i}", source=f"/d/{i}.mp4", caption=f"c{i}")

    with RowSpool(tmp_path, rows_per_file=3) as spool:
        files = spool.write(rows())
        assert [n for _, n in files] == [3, 3, 2]
        blocks = [t for path, _ in files for t in read_spool(path, 2)]
        assert [t.num_rows for t in blocks] == [2, 1, 2, 1, 2]
        back = [VideoRow.from_json(json.loads(s)) for t in blocks for s in t["row"].to_pylist()]
        assert [r.video_id for r in back] == [f"v{i}" for i in range(8)]
        assert back[5].caption == "c5"
    assert not (tmp_path / "spool").exists()


def _listening_sockets_of(pids: set[int]) -> list[str]:
    """Local addresses (hex, as /proc/net/tcp{,6} write them) that these processes listen on."""
    inodes: dict[str, int] = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:["):
                        inodes[link[8:-1]] = pid
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # LISTEN
                out.append(cols[1].split(":")[0])
    return out


def _descendants(root: int) -> set[int]:
    """Every process whose parent chain reaches ``root`` (the Ray this test started)."""
    parent: dict[int, int] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            parent[int(pid)] = int(stat.rsplit(")", 1)[1].split()[1])
    out: set[int] = set()
    for pid in parent:
        p = pid
        while p in parent and p not in (0, 1):
            p = parent[p]
            if p == root:
                out.add(pid)
                break
    return out


_LOOPBACK_HEX = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}


def test_a_ray_diffcap_starts_listens_on_loopback_only(tmp_path):
    from diffcap.config import EngineConfig
    from diffcap.engine.ray_executor import ensure_ray

    ray.shutdown()
    ensure_ray(EngineConfig(engine="ray", workers=2))
    try:
        assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
        listening = _listening_sockets_of(_descendants(os.getpid()) | {os.getpid()})
        assert listening, "found no listening Ray socket to check"
        assert set(listening) <= _LOOPBACK_HEX, listening
    finally:
        ray.shutdown()


def test_a_node_local_endpoint_is_not_probed_from_the_driver(tmp_path):
    """On a cluster, ``--api-base http://127.0.0.1:PORT`` is each node's own server (one
    vLLM per node); the driver may serve nothing there, so only the workers reach it. The
    same closed port is refused at once without a cluster."""
    from diffcap.errors import ModelUnavailable
    from diffcap.stages.caption import CaptionStage
    from support.servers import free_port

    model = {"api_base": f"http://127.0.0.1:{free_port()}/v1", "model": "m", "api_key": "k"}
    on_cluster = RunConfig.model_validate(
        {"model": model, "engine": {"engine": "ray", "ray_address": "10.0.0.1:6379"}}
    )
    CaptionStage(on_cluster, tmp_path).check()  # no probe of the driver's loopback
    for engine in ({"engine": "local"}, {"engine": "ray"}):
        cfg = RunConfig.model_validate({"model": model, "engine": engine})
        with pytest.raises(ModelUnavailable):
            CaptionStage(cfg, tmp_path).check()


def test_a_row_that_cannot_travel_is_a_bug_of_that_row_not_a_lost_batch(tmp_path):
    """A stage that leaves bytes in a row (not JSON): on Ray that row comes back as an
    internal error with its traceback (pending, exit 70); the rest of its batch is done."""
    from diffcap.engine.ray_executor import RayExecutor
    from diffcap.engine.rows import VideoRow
    from support.stages import BytesRecord, run_rows

    cfg = RunConfig.model_validate({"engine": {"engine": "ray"}})
    rows = [VideoRow(video_id=f"v{i}", source=f"s{i}", caption="ok") for i in range(3)]
    rows[1].caption = "BYTES"
    with ray_cluster.local_ray():
        got = run_rows(RayExecutor, cfg, rows, [BytesRecord(cfg, tmp_path)])
    by_id = {r.video_id: r for r in got}
    assert sorted(by_id) == ["v0", "v1", "v2"]  # nothing lost
    assert by_id["v0"].record == {"ok": True} and by_id["v2"].active
    bad = by_id["v1"]
    assert bad.status == "deferred" and bad.reason == "internal_error"
    assert "not JSON serializable" in bad.error and "Traceback" in (bad.traceback or "")


@pytest.mark.timeout(60)  # ray.init alone waits minutes on a dead address
def test_an_unreachable_cluster_stops_in_one_line_at_once():
    """A dead address is a fault of the world said in one line (exit 4), not a long hang."""
    from diffcap.config import EngineConfig
    from diffcap.engine.ray_executor import ensure_ray
    from diffcap.errors import RunStopped
    from support.servers import free_port

    ray.shutdown()
    with pytest.raises(RunStopped, match=r"cannot reach the Ray cluster at 127\.0\.0\.1"):
        ensure_ray(EngineConfig(engine="ray", ray_address=f"127.0.0.1:{free_port()}"))
    assert not ray.is_initialized()


def test_sqlite_request_cache_is_refused_across_hosts_not_across_local_nodes(tmp_path):
    """Workers on several hosts would write one SQLite file over a network filesystem; the
    nodes of one host share its disk (how the simulated-cluster tests run)."""
    from diffcap.engine.ray_executor import _refuse_sqlite_across_hosts
    from diffcap.errors import ConfigError
    from diffcap.stages.caption import CaptionStage
    from diffcap.stages.keyframes import KeyframeStage

    class Nodes:  # what ray.nodes() reports: a real multi-host cluster cannot run here
        def __init__(self, *hosts: str) -> None:
            self.hosts = hosts

        def nodes(self) -> list[dict]:
            return [{"Alive": True, "NodeManagerAddress": h} for h in self.hosts]

    cfg = RunConfig.model_validate({"model": {"api_base": "http://h:1/v1", "model": "m"}})
    caption, keyframes = CaptionStage(cfg, tmp_path), KeyframeStage(cfg, tmp_path)
    _refuse_sqlite_across_hosts(Nodes("127.0.0.1", "127.0.0.1"), [caption], cfg.engine)
    _refuse_sqlite_across_hosts(Nodes("10.0.0.1", "10.0.0.2"), [keyframes], cfg.engine)
    with pytest.raises(ConfigError, match="spans 2 hosts"):
        _refuse_sqlite_across_hosts(Nodes("10.0.0.1", "10.0.0.2"), [caption], cfg.engine)
    pg = cfg.model_copy(
        update={"engine": cfg.engine.model_copy(update={"cache_url": "postgresql://u@h/d"})}
    )
    _refuse_sqlite_across_hosts(Nodes("10.0.0.1", "10.0.0.2"), [caption], pg.engine)


@pytest.mark.timeout(240)  # a pool whose actors die for good would hang Ray Data here
def test_a_video_that_kills_its_ray_worker_every_time_does_not_stop_the_others(tmp_path):
    """The dying worker is restarted and its batch retried ``ray_max_retries`` times, then
    dropped; the video then runs alone until it has killed ``max_worker_deaths`` workers and
    comes back failed (the poison-video limit); every other video is done."""
    from diffcap.engine.ray_executor import RayExecutor
    from diffcap.engine.rows import VideoRow
    from support.stages import CrashOn, run_rows

    cfg = RunConfig.model_validate(
        {"engine": {"engine": "ray", "ray_max_retries": 1, "max_worker_deaths": 3}}
    )
    rows = [VideoRow(video_id=f"v{i}", source=f"s{i}", caption=f"c{i}") for i in range(5)]
    rows[2].caption = "CRASH"
    with ray_cluster.local_ray():
        got = run_rows(RayExecutor, cfg, rows, [CrashOn(cfg, tmp_path)])
    by_id = {r.video_id: r for r in got}
    assert sorted(by_id) == ["v0", "v1", "v2", "v3", "v4"]  # each exactly once
    poison = by_id.pop("v2")
    assert (poison.status, poison.stage, poison.reason) == ("failed", "ray", "worker_crashed")
    assert poison.error.startswith("killed 3 workers (WorkerCrashedError")
    assert all(r.caption == f"c{r.video_id[1:]}:ok" for r in by_id.values())


@pytest.mark.timeout(240)
def test_a_stalled_dataset_is_left_by_the_watchdog_not_waited_on_forever(tmp_path):
    """A video whose worker hangs: after ``engine.ray_stall_s`` without a row back the driver
    leaves the dataset with a warning, the video runs alone for at most that long, then stays
    pending; the others are done and the executor returns. (In a process of its own: the
    reading thread left on the hung dataset ends its process when Ray shuts down.)"""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root / "tests")])}
    proc = subprocess.run(
        [sys.executable, "-m", "support.ray_stall", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=200, cwd=root,
    )  # fmt: skip
    line = next((x for x in proc.stdout.splitlines() if x.startswith("{")), None)
    assert line is not None, proc.stderr[-3000:]
    out = json.loads(line)
    got = {vid: caption for vid, caption in out["got"]}
    assert sorted(got) == ["v0", "v2", "v3"]  # v1: still pending
    assert all(caption == f"c{vid[1:]}:ok" for vid, caption in got.items())
    assert "Ray returned no video for 8 s (engine.ray_stall_s)" in out["log"]
    assert "v1 did not finish alone on Ray in 8 s" in out["log"]
    assert out["took"] < 120
