"""Graceful stop on SIGTERM (docker stop, systemd, a batch scheduler) and on the first Ctrl-C:
finish the answers in flight, then stop.

While a run's pipeline runs (:func:`graceful_sigterm`), the first SIGTERM or SIGINT (Ctrl-C)
sets one flag: no new model request is sent (the request cache raises
:class:`~diffcap.errors.RunStopped` ``terminated`` / ``interrupted``), no new video starts
(the run control stops), and the requests already sent are awaited and their answers
stored, so a rerun replays them instead of paying again. The run then writes its outputs
and exits 143 (SIGTERM) or 130 (Ctrl-C). A second signal exits at once, as SIGKILL would:
finished work is committed either way.

    with graceful_sigterm():
        with request_in_flight():   # around each request sent (the count a Ctrl-C names)
            ...
    stop_requested()     # True once a SIGTERM or Ctrl-C came
    stop_cause()         # "terminated", "interrupted" or None
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

from diffcap.errors import EXIT_CODES

log = logging.getLogger(__name__)

#: The exit status after a SIGTERM (128 + 15, what a shell reports for it).
EXIT_TERMINATED = EXIT_CODES["terminated"]
#: The exit status after Ctrl-C (128 + 2).
EXIT_INTERRUPTED = EXIT_CODES["interrupted"]

_stop = threading.Event()
_cause: list[str] = []  # the first signal's stop reason
_lock = threading.Lock()
_in_flight = 0


def stop_requested() -> bool:
    """Whether a SIGTERM or Ctrl-C asked this run to stop."""
    return _stop.is_set()


def stop_cause() -> str | None:
    """Why the run was asked to stop: ``terminated`` (SIGTERM), ``interrupted`` (Ctrl-C)."""
    return _cause[0] if _cause else None


def request_stop(cause: str = "terminated") -> None:
    """Ask the run to stop as a SIGTERM (or Ctrl-C) does (tests; an embedding application)."""
    if not _cause:
        _cause.append(cause)
    _stop.set()


@contextlib.contextmanager
def request_in_flight(n: int = 1) -> Iterator[None]:
    """Count ``n`` model requests as in flight for the block (what a Ctrl-C says it waits
    for)."""
    global _in_flight
    with _lock:
        _in_flight += n
    try:
        yield
    finally:
        with _lock:
            _in_flight -= n


def in_flight() -> int:
    return _in_flight


def _on_sigterm(signum: int, frame: Any) -> None:
    if _stop.is_set():
        os._exit(EXIT_TERMINATED)
    request_stop("terminated")
    log.warning(
        "SIGTERM: finishing the model answers in flight, then stopping (finished work is "
        "kept, a rerun resumes); send it again to stop at once"
    )


def _on_sigint(signum: int, frame: Any) -> None:
    if _stop.is_set():
        os.write(2, b"\nstopped now; rerun the same command to resume (finished work is kept)\n")
        os._exit(EXIT_INTERRUPTED)
    request_stop("interrupted")
    log.warning(
        "Ctrl-C: finishing %d in-flight requests; Ctrl-C again to stop now (finished work "
        "is kept, a rerun resumes)",
        in_flight(),
    )


@contextlib.contextmanager
def graceful_sigterm() -> Iterator[None]:
    """Handle SIGTERM and SIGINT gracefully inside the block (main thread only; elsewhere a
    no-op). The flag is cleared on entry and the previous handlers restored on exit."""
    _stop.clear()
    _cause.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    previous_int = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_TERMINATED",
    "graceful_sigterm",
    "in_flight",
    "request_in_flight",
    "request_stop",
    "stop_cause",
    "stop_requested",
]
