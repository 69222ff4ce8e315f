"""The bounded queue between keyframe selection and the model, and its drop rule.

At most ``size`` keyframes wait for the model (the one being captioned is not waiting).
When a keyframe arrives to a full queue, the **oldest waiting keyframe is dropped** and
reported, so what waits is always the newest: when the model is slower than the stream,
the delay of a caption stays under about ``(size + 1)`` model calls instead of growing
without bound. Gap and end markers are never dropped and keep their place in the order.

    q = DropQueue(1)
    dropped = q.put(keyframe)       # the keyframe that fell out, or None
    item = await q.get()
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class DropQueue(Generic[T]):
    def __init__(self, size: int, droppable: type[T]) -> None:
        if size < 1:
            raise ValueError(f"the live queue must hold at least 1 keyframe, got {size}")
        self.size = size
        self.droppable = droppable
        self._items: deque[Any] = deque()
        self._ready = asyncio.Event()

    def waiting(self) -> int:
        """Droppable items waiting."""
        return sum(1 for x in self._items if isinstance(x, self.droppable))

    def put(self, item: Any) -> T | None:
        """Add ``item``; returns the droppable item that was dropped to make room, if any."""
        dropped: T | None = None
        if isinstance(item, self.droppable) and self.waiting() >= self.size:
            dropped = next(x for x in self._items if isinstance(x, self.droppable))
            self._items.remove(dropped)
        self._items.append(item)
        self._ready.set()
        return dropped

    async def get(self) -> Any:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def __len__(self) -> int:
        return len(self._items)
