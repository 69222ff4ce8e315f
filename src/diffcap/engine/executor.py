"""What runs a segment of stages over rows: the executor contract.

An executor sees stages only through the stage contract (:mod:`diffcap.engine.stage`):
it sizes and places workers from ``stage.resources``, calls ``setup`` once per worker and
``process``/``aprocess`` on batches, hands every row whose chain ended to ``on_row``, and
starts no new video once ``control.stop_reason()`` says stop.

    class MyExecutor(Executor):
        name = "mine"
        def run(self, rows, stages, on_row, control, *, total=None): ...
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

from diffcap.config import RunConfig
from diffcap.engine.control import RunControl
from diffcap.engine.rows import VideoRow
from diffcap.engine.stage import Stage


class Executor(ABC):
    """Base of the local and Ray executors."""

    name: ClassVar[str]

    def __init__(self, cfg: RunConfig, *, progress: bool = True) -> None:
        self.cfg = cfg
        self.progress = progress

    @abstractmethod
    def run(
        self,
        rows: Iterable[VideoRow],
        stages: Sequence[Stage],
        on_row: Callable[[VideoRow], Any],
        control: RunControl,
        *,
        total: int | None = None,
    ) -> None:
        """Run ``rows`` through ``stages`` in order; ``on_row`` gets each row when its chain
        ends (done with every stage, failed, filtered or deferred). ``rows`` may be a lazy
        iterable (pulled as work frees up, never held whole); ``total`` sizes the bars."""
