"""The Ray executor: the run's stages on Ray Data (with :mod:`diffcap.engine.ray_io`, the
only diffcap modules that import ray).

Each stage becomes one ``map_batches`` step with a pool of actors planned from the stage's
declared :class:`~diffcap.engine.stage.Resources` and the cluster's resources
(:func:`plan_pool`):

- a stage that needs GPUs (an in-process model on CUDA, or one on ``device: auto`` when the
  cluster has GPUs) gets one actor per GPU of the cluster (``engine.model_actors`` caps it);
- a model behind a server or an API gets ``engine.model_actors`` actors (default: one per
  node, spread over the nodes), each with ``model.concurrency`` requests in flight;
- a CPU stage (keyframes) gets an autoscaling pool of one-CPU actors, up to the cluster's
  CPUs, one video per call so long videos do not hold up short ones.

Rows stream in from a spool of JSONL files (:mod:`~diffcap.engine.ray_io`) and stream
back to the driver, which commits each one; Ray Data's backpressure bounds what is in
flight (two batches per actor). Every actor calls ``stage.setup()`` once. Faults:
an actor that dies (its node lost, a decoder crash, the OOM killer) is restarted up to
``engine.ray_max_retries`` times and its batch retried as often; finished model calls
replay from the request cache, so only calls in flight on the lost node are sent again.
A batch that still fails is dropped; a dataset that returns nothing for ``engine.ray_stall_s``
is abandoned (a watchdog: Ray Data can wait forever on a dead actor). The videos that did not
come back then run alone, one plain Ray task each (:mod:`~diffcap.engine.ray_alone`): a
video that kills ``engine.max_worker_deaths`` workers alone is failed (the poison-video
limit), never left pending forever.

``engine.ray_address`` joins an existing cluster (the run dir must be on storage every node
sees); otherwise a local Ray starts with ``max(2, engine.workers)`` CPUs, bound to loopback
only (Ray's dashboard and job API are unauthenticated: diffcap never exposes them).

    RayExecutor(cfg).run(rows, stages, on_row=commit, control=control)
"""

from __future__ import annotations

import json
import logging
import os
import socket
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from diffcap._deps import require
from diffcap.config import EngineConfig
from diffcap.engine.control import RunControl
from diffcap.engine.executor import Executor
from diffcap.engine.ray_actor import StageActor
from diffcap.engine.ray_alone import AloneRunner
from diffcap.engine.ray_io import BatchFeed, RowSpool, spool_source, spooled_rows
from diffcap.engine.ray_reaper import start_reaper
from diffcap.engine.rows import VideoRow
from diffcap.engine.stage import Resources, Stage
from diffcap.errors import ConfigError, RunStopped

logger = logging.getLogger(__name__)

__all__ = ["PoolPlan", "RayExecutor", "StageActor", "ensure_ray", "plan_pool"]

#: Set before ray is imported, it makes a Ray that diffcap starts use (and bind) loopback.
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def ensure_ray(engine: EngineConfig) -> Any:
    """Import ray and connect: to ``engine.ray_address`` or a local, loopback-only Ray."""
    if not engine.ray_address:
        os.environ.setdefault(LOOPBACK_ENV, "0")  # read by ray when it is imported
    ray = require("ray", extra="ray", purpose="--engine ray")
    if not ray.is_initialized():
        if engine.ray_address:
            logger.info("connecting to Ray at %s", engine.ray_address)
            try:
                _probe(engine.ray_address)  # ray.init itself waits minutes on a dead address
                ray.init(address=engine.ray_address)
            except (OSError, TimeoutError, RuntimeError) as exc:
                raise RunStopped(
                    "ray_unreachable",
                    f"cannot reach the Ray cluster at {engine.ray_address} ({exc})",
                    hint="check the address (`ray status` on the head node) and rerun; "
                    "nothing was lost",
                ) from exc
        else:
            _check_loopback()
            # address="local": always a new instance of our own, never a cluster that
            # happens to run on this machine (joining one is explicit: engine.ray_address).
            ray.init(address="local", num_cpus=max(2, engine.workers), include_dashboard=False)
            _reap_if_killed(ray)
    return ray


def _reap_if_killed(ray: Any) -> None:
    """The local Ray this driver started is stopped if the driver dies without shutting it
    down (SIGKILL): see :mod:`diffcap.engine.ray_reaper`."""

    try:  # Ray's own record of the processes it started for this driver (private API)
        node = ray._private.worker._global_node
        pids = [p.process.pid for procs in node.all_processes.values() for p in procs]
    except Exception as exc:  # another Ray version: no watcher, only a debug line
        logger.debug("no Ray process list (%s): Ray is not stopped after a killed driver", exc)
        return
    start_reaper(os.getpid(), pids)


def _probe(address: str, timeout: float = 5.0) -> None:
    """A TCP connect to ``host:port`` (or ``ray://host:port``); ``auto`` and other forms
    are left to ray. Raises OSError when nothing listens there."""
    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return
    with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
        pass


def _check_loopback() -> None:
    from ray._private import ray_constants

    if ray_constants.ENABLE_RAY_CLUSTER:
        raise ConfigError(
            "ray was imported before diffcap could bind a local Ray to loopback",
            hint=f"set {LOOPBACK_ENV}=0 in the environment, or join a cluster with "
            "engine.ray_address",
        )


@dataclass(frozen=True)
class PoolPlan:
    """How one stage runs on Ray: its actors, what each holds, rows per call."""

    min_size: int
    max_size: int
    cpus: float
    gpus: float
    batch_size: int
    spread: bool = False


def plan_pool(
    stage_name: str,
    res: Resources,
    engine: EngineConfig,
    nodes: Sequence[Mapping[str, float]],
) -> PoolPlan:
    """The actor pool of a stage from its resources and the resources of each alive node
    (see the module docstring). Actors are counted per node: two 1-GPU nodes hold two
    1-GPU actors but no 2-GPU actor."""
    gpus = res.gpus or (1.0 if res.wants_gpu and any(n.get("GPU", 0) >= 1 for n in nodes) else 0)
    if gpus:
        fit = sum(int(float(n.get("GPU", 0.0)) // gpus) for n in nodes)
        if fit < 1:
            have = max((float(n.get("GPU", 0.0)) for n in nodes), default=0.0)
            raise ConfigError(
                f"stage {stage_name} needs {gpus:g} GPU per worker; no Ray node has that "
                f"many (the most on one node: {have:g})",
                hint="add GPU nodes, or set --device cpu, or serve the model and pass --api-base",
            )
        n = min(fit, engine.model_actors or fit)
        return PoolPlan(n, n, res.cpus, gpus, res.concurrency)
    if res.cpu_bound:
        fit = max(1, sum(int(float(n.get("CPU", 0.0)) // res.cpus) for n in nodes))
        # A pool that may shrink to one actor: a fixed pool holding every CPU of a small
        # cluster would starve the read tasks that feed it.
        return PoolPlan(1, fit, res.cpus, 0.0, 1)
    n = engine.model_actors or max(1, len(nodes))
    return PoolPlan(n, n, res.cpus, 0.0, res.concurrency, spread=n > 1)


def _map_stage(ray: Any, ds: Any, stage: Stage, plan: PoolPlan, engine: EngineConfig) -> Any:
    compute = ray.data.ActorPoolStrategy(
        min_size=plan.min_size, max_size=plan.max_size, max_tasks_in_flight_per_actor=2
    )
    remote: dict[str, Any] = {
        # Deliberate, not Ray Data's defaults (retry every batch forever): an actor lost
        # with its node (or to a crash) is always restarted, so the pool keeps its size
        # (Ray Data waits forever on a pool whose actors are dead for good: measured);
        # its batch is retried a bounded number of times, then dropped, and its videos
        # stay pending for the next run.
        "max_restarts": -1,
        "max_task_retries": engine.ray_max_retries,
    }
    if plan.spread:
        remote["scheduling_strategy"] = "SPREAD"
    with warnings.catch_warnings():
        # Ray 2.60 deprecates these as free keyword arguments but has no named ones for
        # them yet (the extra pins ray below the release that removes them).
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        return ds.map_batches(
            StageActor,
            fn_constructor_args=(stage,),
            batch_size=plan.batch_size,
            batch_format="numpy",
            compute=compute,
            num_cpus=plan.cpus,
            num_gpus=plan.gpus or None,
            **remote,
        )


def _refuse_sqlite_across_hosts(ray: Any, stages: Sequence[Stage], engine: EngineConfig) -> None:
    """Model workers write the request cache as answers arrive: on nodes of several hosts
    that would be one SQLite file written over a network filesystem, whose locking SQLite's
    own documentation calls unreliable. Nodes of one host (one disk) are fine."""
    if engine.cache_url or not any(getattr(s, "uses_cache", False) for s in stages):
        return
    hosts = {n.get("NodeManagerAddress") for n in ray.nodes() if n.get("Alive")}
    if len(hosts) > 1:
        raise ConfigError(
            f"the Ray cluster spans {len(hosts)} hosts: its model workers would all write "
            "the run's SQLite request cache over a shared filesystem",
            hint="pass --engine-cache-url postgresql://USER@HOST/DB (docs/cluster-state.md)",
        )


class RayExecutor(Executor):
    """Runs rows through stages on Ray Data; ``on_row`` gets each row as it comes back."""

    name = "ray"

    def run(
        self,
        rows: Iterable[VideoRow],
        stages: Sequence[Stage],
        on_row: Callable[[VideoRow], Any],
        control: RunControl,
        *,
        total: int | None = None,
    ) -> None:
        if not stages or control.stop_reason() is not None:
            return
        # Absolute: read tasks on other nodes resolve the spool's paths themselves.
        run_dir = Path(stages[0].run_dir).absolute()
        with RowSpool(run_dir) as spool:
            files = spool.write(rows)
            sent = sum(n for _, n in files)
            if not sent:
                return
            back = self._stream(files, stages, on_row, control)
            if len(back) == sent or control.stop_reason() is not None:
                return
            lost = [r for r in spooled_rows(files) if r.video_id not in back]
        ray = ensure_ray(self.cfg.engine)
        AloneRunner(self.cfg.engine, control.store).run(ray, lost, stages, on_row, control)

    def plans(self, ray: Any, stages: Sequence[Stage]) -> list[PoolPlan]:
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        out = [plan_pool(s.name, s.resources, self.cfg.engine, nodes) for s in stages]
        for stage, plan in zip(stages, out, strict=True):
            logger.info("ray: %s on %s", stage.name, plan)
        return out

    def _stream(
        self,
        files: list[tuple[str, int]],
        stages: Sequence[Stage],
        on_row: Callable[[VideoRow], Any],
        control: RunControl,
    ) -> set[str]:
        """Run the spooled rows; the ids of the rows that came back."""
        ray = ensure_ray(self.cfg.engine)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # our own bar below; Ray's bars fight with tqdm
        ctx.max_errored_blocks = -1  # a batch that keeps failing must not stop the others
        engine = self.cfg.engine
        _refuse_sqlite_across_hosts(ray, stages, engine)
        ds = ray.data.read_datasource(spool_source(files, engine.ray_rows_per_block))
        for stage, plan in zip(stages, self.plans(ray, stages), strict=True):
            ds = _map_stage(ray, ds, stage, plan, engine)
        back: set[str] = set()
        bar = tqdm(
            total=sum(n for _, n in files), desc="ray", unit="video", disable=not self.progress
        )
        feed = BatchFeed(ds.iter_batches(batch_size=None, batch_format="numpy"))
        try:
            for s in feed.rows(engine.ray_stall_s, control):
                bar.update()
                row = VideoRow.from_json(json.loads(s))
                back.add(row.video_id)
                on_row(row)
        finally:
            bar.close()
            feed.close()
        return back
