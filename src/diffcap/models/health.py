"""Endpoint health: a circuit breaker shared by every request of one backend.

Retries make a single request patient (seconds to a minute of backoff); a run should not be:
when the endpoint has kept failing for ``give_up_after_s`` seconds (connection errors,
timeouts, 5xx, and 429 "slow down" answers) with no success in between, the breaker trips
and every request, in flight or new, fails at once with
:class:`~diffcap.errors.ModelUnavailable`. The run then stops with nothing marked failed,
and a rerun resumes. A 429 counts because a server that only ever asks to wait (a spent
quota, a long Retry-After) serves nothing either; any success resets the count.

    health = EndpointHealth(give_up_after_s=5.0, where="http://127.0.0.1:8000/v1")
    health.raise_if_down()       # before each attempt
    health.failure(exc) / health.success()
"""

from __future__ import annotations

import logging
import time

from diffcap.errors import ModelUnavailable, RequestFailed

log = logging.getLogger(__name__)

#: Attempts that must fail in a row before the breaker may trip (on top of the time rule).
MIN_FAILURES = 3


def is_outage(exc: RequestFailed) -> bool:
    """Failures that say the endpoint serves nothing now, not that this request is bad
    (429 included: see the module docstring)."""
    return exc.retryable


class EndpointHealth:
    def __init__(self, give_up_after_s: float, where: str) -> None:
        self.give_up_after_s = give_up_after_s
        self.where = where
        self.failures = 0
        self.first_failure: float | None = None
        self.last_error = ""
        self.tripped = False

    def success(self) -> None:
        self.failures, self.first_failure = 0, None

    def failure(self, exc: RequestFailed) -> None:
        if not is_outage(exc):
            self.success()  # the server answered: it is up, whatever it said
            return
        now = time.monotonic()
        self.failures += 1
        self.last_error = exc.message
        if self.first_failure is None:
            self.first_failure = now
            log.warning("%s: %s; retrying", self.where, exc.message)
        if self.failures >= MIN_FAILURES and now - self.first_failure >= self.give_up_after_s:
            self.tripped = True

    def raise_if_down(self) -> None:
        if self.tripped:
            raise ModelUnavailable(
                f"the model endpoint {self.where} kept failing for over "
                f"{self.give_up_after_s:g} s ({self.last_error})",
                hint="check the server, then rerun the same command: finished work is kept",
            )
