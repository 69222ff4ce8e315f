"""The Ray executor: the run's stages on Ray Data (the only diffcap module that imports ray).

Each stage becomes one ``map_batches`` step with its own pool of actors, sized from the
stage's declared :class:`~diffcap.pipeline.stage.Resources` and nothing else: ``cpu_bound``
stages get up to ``engine.workers`` actors of ``cpus`` each and one video per batch; other
stages (I/O, models) get one actor holding ``cpus``/``gpus`` that works on
``resources.concurrency`` videos at once. Every actor calls ``stage.setup()`` once. Rows
travel as JSON strings in a single column, so Arrow never has to guess types for columns
that are mostly ``None``.

Results are the same as the local executor's: the stages are the same objects, requests go
through the same request cache in ``RUN_DIR/run.sqlite``, and the driver commits rows. When
the run control says stop, the driver stops consuming; rows not yet back stay pending.

    RayExecutor(cfg).run(rows, stages, on_row=commit, control=control)

``engine.ray_address`` joins an existing cluster (the run dir must be on a filesystem every
node sees); otherwise a local Ray starts with ``max(2, engine.workers)`` CPUs.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from diffcap._deps import require
from diffcap.config import EngineConfig
from diffcap.pipeline.control import RunControl
from diffcap.pipeline.executor import Executor
from diffcap.pipeline.rows import VideoRow
from diffcap.pipeline.stage import Stage

logger = logging.getLogger(__name__)

__all__ = ["RayExecutor", "StageActor", "ensure_ray"]


class StageActor:
    """A Ray Data callable class wrapping one stage: setup once, then batches of rows."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        stage.setup()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = [VideoRow.from_json(json.loads(s)) for s in batch["row"]]
        try:
            out = self.stage.process(rows)
        except Exception as exc:  # as the local executor: the batch's rows carry the error
            out = [r.fail(self.stage.name, exc) if r.active else r for r in rows]
        return {"row": np.array([json.dumps(r.to_json()) for r in out], dtype=object)}

    def __del__(self) -> None:
        # Actors end with the dataset; close clients and the run database cleanly.
        # At interpreter shutdown there is nothing left to report a failure to.
        with contextlib.suppress(Exception):
            self.stage.teardown()


def ensure_ray(engine: EngineConfig) -> Any:
    """Import ray and connect: to ``engine.ray_address`` or a local instance."""
    ray = require("ray", extra="ray", purpose="--engine ray")
    if not ray.is_initialized():
        if engine.ray_address:
            logger.info("connecting to Ray at %s", engine.ray_address)
            ray.init(address=engine.ray_address)
        else:
            ray.init(num_cpus=max(2, engine.workers), include_dashboard=False)
    return ray


def _map_stage(ray: Any, ds: Any, stage: Stage, engine: EngineConfig) -> Any:
    res = stage.resources
    if res.cpu_bound:
        # A pool that may shrink to one actor: a fixed pool holding every CPU of a small
        # cluster would starve the tasks that feed it.
        compute = ray.data.ActorPoolStrategy(min_size=1, max_size=engine.workers)
        batch_size = 1  # one video per call: long videos do not hold up short ones
    else:
        compute = ray.data.ActorPoolStrategy(size=1)
        batch_size = res.concurrency  # rows of a batch are worked on concurrently
    return ds.map_batches(
        StageActor,
        fn_constructor_args=(stage,),
        batch_size=batch_size,
        batch_format="numpy",
        compute=compute,
        num_cpus=res.cpus,
        num_gpus=res.gpus or None,
        # An actor that dies (a decoder crash, the OOM killer) is restarted and its batch
        # retried, as the local executor retries a crashed worker's video.
        max_restarts=-1,
        max_task_retries=1,
    )


class RayExecutor(Executor):
    """Runs rows through stages on Ray Data; ``on_row`` gets each row as it comes back."""

    name = "ray"

    def run(
        self,
        rows: list[VideoRow],
        stages: Sequence[Stage],
        on_row: Callable[[VideoRow], Any],
        control: RunControl,
    ) -> None:
        if not rows or not stages or control.stop_reason() is not None:
            return
        ray = ensure_ray(self.cfg.engine)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # our own bar below; Ray's bars fight with tqdm
        items = [{"row": json.dumps(r.to_json())} for r in rows]
        # One block per video, so the CPU actors share the work from the first row on.
        ds = ray.data.from_items(items, override_num_blocks=len(rows))
        for stage in stages:
            ds = _map_stage(ray, ds, stage, self.cfg.engine)
        with tqdm(total=len(rows), desc="ray", unit="video", disable=not self.progress) as bar:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                for s in batch["row"]:
                    bar.update()
                    on_row(VideoRow.from_json(json.loads(s)))
                if control.stop_reason() is not None:
                    return  # rows not back yet stay pending in the store
