"""The Ray Data callable class that wraps one stage (a :class:`StageWorker`): set up once,
then batches of rows as JSON strings in one column."""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
from pathlib import Path

import numpy as np

from diffcap.engine.rows import VideoRow
from diffcap.engine.stage import Stage, StageWorker

__all__ = ["CRASH_HOOK_ENV", "StageActor"]


class StageActor:
    """A Ray Data callable class wrapping one stage: setup once, then batches of rows."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.worker = StageWorker(stage)
        self.worker.setup()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = [VideoRow.from_json(json.loads(s)) for s in batch["row"]]
        _crash_hook(rows)
        try:
            out = self.worker.process(rows)
        except Exception as exc:  # as the local executor: the batch's rows carry the error
            out = [r.fail(self.stage.name, exc) if r.active else r for r in rows]
        return {"row": np.array([self._encode(r) for r in out], dtype=object)}

    def _encode(self, row: VideoRow) -> str:
        """A row that cannot travel (a stage left a value JSON cannot hold) is a bug of that
        row, with its traceback, never a lost batch."""
        try:
            return json.dumps(row.to_json())
        except (TypeError, ValueError) as exc:
            row.record = None
            return json.dumps(row.fail(self.stage.name, exc).to_json())

    def __del__(self) -> None:
        # Actors end with the dataset; close clients and the run database cleanly.
        # At interpreter shutdown there is nothing left to report a failure to.
        with contextlib.suppress(Exception):
            self.worker.close()


#: Tests only: a worker that gets a video whose file name matches this glob dies at once
#: (``os._exit(1)``, as a decoder crash or the OOM killer ends it).
CRASH_HOOK_ENV = "DIFFCAP_TEST_KILL_WORKER_ON"


def _crash_hook(rows: list[VideoRow]) -> None:
    pattern = os.environ.get(CRASH_HOOK_ENV)
    if pattern and any(fnmatch.fnmatch(Path(r.source).name, pattern) for r in rows):
        os._exit(1)
