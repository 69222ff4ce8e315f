"""Decode ahead on a helper thread so decoding overlaps with embedding and saving.

    for frame in prefetch(source.frames_at(times), depth=4):
        ...   # the generator runs on another thread; at most `depth` frames wait here

PyAV and Pillow release the GIL in their C code, so the decoder keeps working while this
thread embeds the previous candidates. The source is only ever touched by the helper thread
until it has finished (the generator joins it), so a non-thread-safe reader is fine.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(items: Iterator[T], depth: int = 4) -> Generator[T, None, None]:
    """Iterate ``items`` on a daemon thread, handing them over through a bounded queue.

    Exceptions raised by ``items`` are re-raised here. Stopping early (``break``, an error in
    the consumer) stops the helper thread and waits for it before returning.
    """
    q: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(obj: object) -> bool:
        while not stop.is_set():
            try:
                q.put(obj, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:
            put(_Failure(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # finish the generator on the thread that ran it

    thread = threading.Thread(target=work, name="diffcap-decode", daemon=True)
    thread.start()
    try:
        while True:
            obj = q.get()
            if obj is _DONE:
                return
            if isinstance(obj, _Failure):
                raise obj.exc
            yield obj  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
