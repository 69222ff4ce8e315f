"""The pure selection rules of semantic-aware keyframe extraction (no video, no I/O).

The paper's rule, with its defects fixed: candidates come every ``interval`` seconds; the first
(non-solid) candidate is keyframe 0; a candidate becomes a keyframe when its cosine similarity
to the **last kept** keyframe is below ``threshold``; the last frame is kept when it lies at
least one interval after the last keyframe (or when only keyframe 0 was kept). A budget
(``max_keyframes``) then keeps keyframe 0 and the N-1 most novel others.

    sel = GreedySelector(threshold=0.85)
    for i, vec in enumerate(vectors):          # unit rows, in time order
        keep, sim = sel.offer(vec)
    select_greedy(vectors, 0.85)               # the same on a whole array -> kept indices

Everything here works on numbers and arrays so it can be tested without decoding a video.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")

#: A candidate whose thumbnail's per-channel standard deviation (0-255) stays under this is
#: "solid" (black leader, a flat title card, the first frames of a fade-in).
SOLID_STD = 6.0
#: Thumbnail side used by :func:`is_solid`.
SOLID_THUMB = 32


def candidate_count(start: float, end: float, interval: float) -> int:
    """How many candidate times ``[start, end)`` holds every ``interval`` seconds."""
    if interval <= 0:
        raise ValueError(f"interval must be > 0, got {interval}")
    if end <= start:
        return 0
    return math.ceil((end - start) / interval - 1e-9)


def iter_candidate_times(start: float, end: float, interval: float) -> Iterator[float]:
    """``start, start+interval, ...`` strictly before ``end``, one at a time (multiplied,
    never accumulated, so no drift on long videos; never a list, so memory does not grow
    with duration / interval)."""
    for k in range(candidate_count(start, end, interval)):
        yield start + k * interval


def candidate_times(start: float, end: float, interval: float) -> list[float]:
    """:func:`iter_candidate_times` as a list (for small windows and tests)."""
    return list(iter_candidate_times(start, end, interval))


def is_solid(image: np.ndarray, tol: float = SOLID_STD) -> bool:
    """True when ``image`` is (nearly) one flat colour.

    Measured on a strided 32x32 sample with light box averaging so sensor noise or
    compression grain on a black frame still counts as solid.
    """
    h, w = image.shape[:2]
    sy, sx = max(1, h // SOLID_THUMB), max(1, w // SOLID_THUMB)
    # average 2x2 neighbours at each sample point to damp per-pixel noise
    sample = image[: h - h % sy : sy, : w - w % sx : sx].astype(np.float32)
    if sample.shape[0] > 1 and sample.shape[1] > 1:
        sample = (sample[:-1, :-1] + sample[1:, :-1] + sample[:-1, 1:] + sample[1:, 1:]) * 0.25
    return bool(sample.reshape(-1, sample.shape[-1]).std(axis=0).max() < tol)


class GreedySelector:
    """Streaming form of the rule: offer candidates in time order, one unit vector at a time."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.last: np.ndarray | None = None
        self.kept = 0

    def similarity(self, vec: np.ndarray) -> float | None:
        """Cosine similarity to the last kept keyframe (``None`` before the first)."""
        return None if self.last is None else float(np.dot(vec, self.last))

    def offer(self, vec: np.ndarray, threshold: float | None = None) -> tuple[bool, float | None]:
        """Decide one candidate (against ``threshold`` when given, e.g. a cut candidate's
        looser bar). Returns (kept, similarity to the last kept keyframe)."""
        sim = self.similarity(vec)
        bar = self.threshold if threshold is None else threshold
        if sim is None or sim < bar:
            self.keep(vec)
            return True, sim
        return False, sim

    def keep(self, vec: np.ndarray) -> None:
        """Force a keyframe (the last-frame rule, a hard cut): it becomes the reference."""
        self.last = np.asarray(vec, dtype=np.float32)
        self.kept += 1


def select_greedy(vectors: np.ndarray, threshold: float) -> list[int]:
    """Indices of the rows kept by the greedy rule (row 0 always). Rows must be unit length."""
    sel = GreedySelector(threshold)
    return [i for i, vec in enumerate(np.asarray(vectors)) if sel.offer(vec)[0]]


def keep_last_frame(last_time: float, last_kept_time: float, interval: float, kept: int) -> bool:
    """The paper's last-frame rule: keep the final frame when it lies at least one interval
    after the last keyframe, or when only keyframe 0 was kept (and it is a different frame)."""
    if last_time <= last_kept_time:
        return False
    return kept <= 1 or last_time - last_kept_time >= interval - 1e-9


@dataclass(order=True)
class _Ranked(Generic[T]):
    novelty: float  # lower similarity = more novel = higher novelty
    order: int
    item: T = field(compare=False)


class Budget(Generic[T]):
    """Keep at most ``limit`` items: the first always, then the most novel others.

    Streaming, so only ``limit`` items (and their images) are alive at once. ``add`` returns
    the item that fell out of the budget (the caller deletes its file), or ``None``.
    Novelty is ``-similarity`` to the predecessor keyframe; ties keep the earlier keyframe.
    """

    def __init__(self, limit: int | None) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"max_keyframes must be >= 1, got {limit}")
        self.limit = limit
        self.first: T | None = None
        self._heap: list[_Ranked[T]] = []  # min-heap: the least novel on top
        self._count = 0

    def add(self, item: T, similarity: float | None) -> T | None:
        self._count += 1
        if self.first is None:
            self.first = item
            return None
        novelty = -1.0 if similarity is None else -float(similarity)
        # later keyframes rank below earlier ones on ties (-order)
        ranked = _Ranked(novelty, -self._count, item)
        if self.limit is None or len(self._heap) < self.limit - 1:
            heapq.heappush(self._heap, ranked)
            return None
        if self.limit == 1 or ranked <= self._heap[0]:
            return item
        return heapq.heapreplace(self._heap, ranked).item

    def items(self) -> list[T]:
        """Kept items in insertion (time) order."""
        rest = sorted(self._heap, key=lambda r: -r.order)
        return ([self.first] if self.first is not None else []) + [r.item for r in rest]


def apply_budget(similarities: Sequence[float | None], limit: int | None) -> list[int]:
    """Indices kept by :class:`Budget` for keyframes whose similarity to their predecessor is
    ``similarities[i]`` (``similarities[0]`` is keyframe 0's, usually ``None``)."""
    budget: Budget[int] = Budget(limit)
    for i, sim in enumerate(similarities):
        budget.add(i, sim)
    return budget.items()
