"""Shared score arithmetic: accuracy tables with counts, means, F1.

tally(preds, ["task"])
# {"overall": {"count": 3, "correct": 2, "accuracy": 0.667, "answered": 3,
#              "accuracy_answered": 0.667}, "by": {"task": {"a": {...}, "b": {...}}}}
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["f1", "group_by", "mean", "tally"]


def mean(values: Iterable[float]) -> float | None:
    vals = list(values)
    return sum(vals) / len(vals) if vals else None


def f1(recall: float | None, precision: float | None) -> float | None:
    """Harmonic mean (as the released AutoDQ: of the averaged recall and precision)."""
    if recall is None or precision is None:
        return None
    if recall + precision == 0:
        return 0.0
    return 2 * recall * precision / (recall + precision)


def group_by(preds: Iterable[dict[str, Any]], dim: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in preds:
        value = (p.get("dims") or {}).get(dim)
        if value is not None:
            out[str(value)].append(p)
    return dict(sorted(out.items()))


def _accuracy(preds: list[dict[str, Any]]) -> dict[str, Any]:
    count = len(preds)
    correct = sum(1 for p in preds if p.get("correct"))
    answered = [p for p in preds if p.get("answered", True)]
    right_answered = sum(1 for p in answered if p.get("correct"))
    return {
        "count": count,
        "correct": correct,
        "accuracy": correct / count if count else None,
        "answered": len(answered),
        "accuracy_answered": right_answered / len(answered) if answered else None,
    }


def tally(
    preds: list[dict[str, Any]],
    dims: Iterable[str],
    summarize: Callable[[list[dict[str, Any]]], dict[str, Any]] = _accuracy,
) -> dict[str, Any]:
    """``summarize`` over all predictions and over each value of each dimension."""
    by = {dim: {v: summarize(ps) for v, ps in group_by(preds, dim).items()} for dim in dims}
    return {"overall": summarize(preds), "by": {k: v for k, v in by.items() if v}}
