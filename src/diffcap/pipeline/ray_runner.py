"""The Ray engine: the run's stages on Ray Data (the only diffcap module that imports ray).

Each stage becomes one ``map_batches`` step with its own pool of actors, so CPU stages
(prepare, keyframe extraction) and model stages (short captions, captioning) scale separately:
CPU stages get ``engine.workers`` actors of one CPU each and one video per batch; a model stage
gets one actor (no CPU reserved: it waits on HTTP) that works on ``model.concurrency`` videos
at once. Every actor calls ``stage.setup()`` once. Rows travel as JSON strings in a single
column, so Arrow never has to guess types for columns that are mostly ``None``.

Results are the same as the local engine's: the stages are the same objects, requests go
through the same request cache in ``RUN_DIR/run.sqlite``, and the driver commits rows.

    for row in run_stages_ray(rows, build_stages(cfg, run_dir), cfg.engine):
        store.commit_row(row)

``engine.ray_address`` joins an existing cluster (the run dir must be on a filesystem every
node sees); otherwise a local Ray starts with ``max(2, engine.workers)`` CPUs.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from diffcap._deps import require
from diffcap.config import EngineConfig
from diffcap.pipeline.rows import Row
from diffcap.pipeline.stages import Stage

logger = logging.getLogger(__name__)

__all__ = ["StageActor", "ensure_ray", "run_stages_ray"]


class StageActor:
    """A Ray Data callable class wrapping one stage: setup once, then batches of rows."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        stage.setup()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = [json.loads(s) for s in batch["row"]]
        out = self.stage.process(rows)
        return {"row": np.array([json.dumps(r) for r in out], dtype=object)}

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
    if stage.kind == "cpu":
        # A pool that may shrink to one actor: a fixed pool holding every CPU of a small
        # cluster would starve the tasks that feed it.
        return ds.map_batches(
            StageActor,
            fn_constructor_args=(stage,),
            batch_size=1,  # one video per call: long videos do not hold up short ones
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=engine.workers),
            num_cpus=1,
        )
    return ds.map_batches(
        StageActor,
        fn_constructor_args=(stage,),
        batch_size=stage.cfg.model.concurrency,  # rows of a batch are captioned concurrently
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=1),
        num_cpus=0,
    )


def run_stages_ray(
    rows: list[Row], stages: Sequence[Stage], engine: EngineConfig, *, progress: bool = True
) -> Iterator[Row]:
    """Apply ``stages`` in order to ``rows`` on Ray Data; yield finished rows as they come."""
    if not rows:
        return
    ray = ensure_ray(engine)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # our own bar below; Ray's bars fight with tqdm
    # One block per video, so the CPU actors share the work from the first row on.
    ds = ray.data.from_items([{"row": json.dumps(r)} for r in rows], override_num_blocks=len(rows))
    for stage in stages:
        ds = _map_stage(ray, ds, stage, engine)
    with tqdm(total=len(rows), desc="ray", unit="video", disable=not progress) as bar:
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for s in batch["row"]:
                bar.update()
                yield json.loads(s)
