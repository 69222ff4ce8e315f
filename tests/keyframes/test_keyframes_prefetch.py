"""The decode-ahead helper thread: order, errors, early stop, no leaked threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from diffcap.keyframes.prefetch import prefetch


def test_order_and_completion() -> None:
    assert list(prefetch(iter(range(100)), depth=3)) == list(range(100))


def test_errors_reach_the_consumer() -> None:
    def boom() -> Iterator[int]:
        yield 1
        raise RuntimeError("decoder died")

    it = prefetch(boom(), depth=2)
    assert next(it) == 1
    with pytest.raises(RuntimeError, match="decoder died"):
        next(it)


def test_early_stop_closes_the_source_on_its_thread() -> None:
    closed: list[str] = []

    def source() -> Iterator[int]:
        try:
            yield from range(10_000)
        finally:
            closed.append(threading.current_thread().name)

    before = threading.active_count()
    for i in prefetch(source(), depth=2):
        if i == 5:
            break
    assert closed == ["diffcap-decode"]
    assert threading.active_count() == before
