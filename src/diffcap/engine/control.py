"""When a run stops early: one signal, asked by every executor before it starts a video.

The driver shows :class:`RunControl` every finished row (``observe``); executors ask
``stop_reason()`` before starting the next video:

- ``budget``: the run's total estimated spend (in its request cache: the run's SQLite, or
  the PostgreSQL of ``engine.cache_url``) reached ``engine.max_cost_usd``;
- ``endpoint_down``: the model endpoint stayed unreachable (the backend's breaker tripped);
- ``faults``: ``engine.max_consecutive_faults`` videos in a row hit a fault of the world
  (disk full, permission denied, 5xx after retries);
- ``config``: a setting or install the whole run lacks (an unknown embedder, a missing
  package) surfaced in a worker;
- ``terminated`` / ``interrupted``: a SIGTERM / the first Ctrl-C came (see
  :mod:`diffcap.shutdown`).

None of these marks a video failed: the videos stay pending and a plain rerun resumes.

    control = RunControl(store, cfg.engine)
    control.observe(row)
    control.stop_reason()        # None, "budget", "endpoint_down" or "faults"
"""

from __future__ import annotations

import time
from typing import Any

from diffcap.config import EngineConfig
from diffcap.engine.rows import VideoRow
from diffcap.shutdown import stop_cause, stop_requested

#: Seconds between re-reads of the run's total spend.
SPEND_REFRESH_S = 1.0


class RunControl:
    def __init__(self, store: Any, engine: EngineConfig) -> None:
        self.store = store  # its spend(): the request cache the store was opened with
        self.engine = engine
        self.streak = 0
        self.last_fault: VideoRow | None = None
        self._stop: str | None = None
        self._spend_at = -1e9
        self._spent = 0.0
        self.bugs = 0

    def observe(self, row: VideoRow) -> None:
        if row.reason == "internal_error":
            self.bugs += 1
        if row.fatal:
            self.last_fault = row
            self._stop = self._stop or "config"
        if row.world_fault:
            self.streak += 1
            self.last_fault = row
            if row.reason == "model_unavailable":
                self._stop = self._stop or "endpoint_down"
            elif self.streak >= self.engine.max_consecutive_faults:
                self._stop = self._stop or "faults"
        elif row.status in ("done", "failed", "filtered"):
            self.streak = 0
        elif row.reason == "budget":
            self._stop = self._stop or "budget"

    def stop_reason(self) -> str | None:
        if self._stop in (None, "faults") and stop_requested():
            # the rows it deferred are not faults of the world
            self._stop = stop_cause() or "terminated"
        if self._stop is None and self._budget_reached():
            self._stop = "budget"
        return self._stop

    def _budget_reached(self) -> bool:
        cap = self.engine.max_cost_usd
        if cap is None:
            return False
        now = time.monotonic()
        if now - self._spend_at > SPEND_REFRESH_S:
            self._spent = float(self.store.spend()["cost_usd"])
            self._spend_at = now
        return self._spent >= cap
