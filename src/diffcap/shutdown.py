"""Graceful SIGTERM (docker stop, systemd, a batch scheduler): finish the answers in flight,
then stop.

While a run's pipeline runs (:func:`graceful_sigterm`), the first SIGTERM sets one flag:
no new model request is sent (the request cache raises
:class:`~diffcap.errors.RunStopped` ``terminated``), no new video starts (the run control
stops), and the requests already sent are awaited and their answers stored, so a rerun
replays them instead of paying again. The run then writes its outputs and exits 143. A
second SIGTERM exits at once (143), as SIGKILL would: finished work is committed either way.

    with graceful_sigterm():
        pipeline.run(...)
    stop_requested()     # True once a SIGTERM came
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

_stop = threading.Event()


def stop_requested() -> bool:
    """Whether a SIGTERM asked this run to stop."""
    return _stop.is_set()


def request_stop() -> None:
    """Ask the run to stop as a SIGTERM does (tests; an embedding application)."""
    _stop.set()


def _on_sigterm(signum: int, frame: Any) -> None:
    if _stop.is_set():
        os._exit(EXIT_TERMINATED)
    _stop.set()
    log.warning(
        "SIGTERM: finishing the model answers in flight, then stopping (finished work is "
        "kept, a rerun resumes); send it again to stop at once"
    )


@contextlib.contextmanager
def graceful_sigterm() -> Iterator[None]:
    """Handle SIGTERM gracefully inside the block (main thread only; elsewhere a no-op).
    The flag is cleared on entry and the previous handler restored on exit."""
    _stop.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


__all__ = ["EXIT_TERMINATED", "graceful_sigterm", "request_stop", "stop_requested"]
