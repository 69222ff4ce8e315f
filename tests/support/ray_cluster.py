"""Rays for tests, every node on loopback (the tests' conftest sets
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` before ray is imported): ``local_ray()`` (one node
whose workers import the test stages) and a simulated multi-node cluster.

    with simulated_cluster(gpus_per_worker=1) as (cluster, workers):   # head + 2 workers
        loss = lose_node_when(fault_server, cluster, workers[1], answered=6)
        run_dataset(...)                                              # engine ray
        loss.join(); loss.answered_at                                 # calls answered then
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def local_ray() -> Iterator[Any]:
    """A new local, loopback Ray of 2 CPUs whose workers import ``support.*`` (test stages)."""
    import ray

    ray.shutdown()
    env = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    ray.init(address="local", num_cpus=2, include_dashboard=False, runtime_env={"env_vars": env})
    try:
        yield ray
    finally:
        ray.shutdown()


@contextlib.contextmanager
def simulated_cluster(*, gpus_per_worker: int = 0) -> Iterator[tuple[Any, list[Any]]]:
    """A head (the driver, one CPU) and two worker nodes of 2 CPUs (and fake GPUs)."""
    import ray
    from ray import cluster_utils

    ray.shutdown()
    c = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    workers = [c.add_node(num_cpus=2, num_gpus=gpus_per_worker) for _ in range(2)]
    c.wait_for_nodes()
    env = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # workers import support.*
    ray.init(address=c.address, runtime_env={"env_vars": env}, log_to_driver=False)
    try:
        yield c, workers
    finally:
        ray.shutdown()
        c.shutdown()


class NodeLoss:
    """Removes ``node`` from ``cluster`` once ``server`` has answered ``answered`` calls."""

    def __init__(self, server: Any, cluster: Any, node: Any, answered: int) -> None:
        self.answered_at: int | None = None
        self._thread = threading.Thread(
            target=self._run, args=(server, cluster, node, answered), daemon=True
        )
        self._thread.start()

    def _run(self, server: Any, cluster: Any, node: Any, answered: int) -> None:
        while len(server.answered) < answered:
            time.sleep(0.02)
        self.answered_at = len(server.answered)
        cluster.remove_node(node)

    def join(self, timeout: float = 60) -> None:
        self._thread.join(timeout)


def lose_node_when(server: Any, cluster: Any, node: Any, *, answered: int) -> NodeLoss:
    return NodeLoss(server, cluster, node, answered)
