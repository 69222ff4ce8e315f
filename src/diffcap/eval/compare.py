"""``diffcap eval-compare``: paired bootstrap intervals of the differences between evals.

Two or more eval directories of one benchmark; the first is the baseline. Over the item ids
every directory scored, the headline statistic (the benchmark's ``statistic``: accuracy,
AutoDQ F1, VDC accuracy) is recomputed on ``n`` resamples of those ids, drawn with
replacement by a seeded generator, the same resample for both sides (paired); the 95%
interval of ``B - A`` is the 2.5th and 97.5th percentiles of the resampled differences.

    rows = compare([Path("evals/a"), Path("evals/b")], n=2000, seed=0)
    print(format_table(rows))
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from diffcap.errors import ConfigError
from diffcap.eval.outputs import load_predictions
from diffcap.eval.registry import get_benchmark

__all__ = ["Comparison", "compare", "format_table", "paired_bootstrap"]


@dataclass(frozen=True)
class Comparison:
    baseline: str
    other: str
    metric: str
    shared: int
    a: float | None
    b: float | None
    diff: float | None
    low: float | None
    high: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _percentile(sorted_vals: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    pos = (len(sorted_vals) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)


def paired_bootstrap(
    statistic: Any, a: list[Any], b: list[Any], *, n: int = 2000, seed: int = 0
) -> tuple[float | None, float | None, float | None]:
    """(diff, low, high) of ``statistic(b) - statistic(a)`` over paired lists."""
    if not a:
        return None, None, None
    sa, sb = statistic(a), statistic(b)
    if sa is None or sb is None:
        return None, None, None
    rng = random.Random(seed)
    k = len(a)
    diffs = []
    for _ in range(n):
        idx = [rng.randrange(k) for _ in range(k)]
        da, db = statistic([a[i] for i in idx]), statistic([b[i] for i in idx])
        if da is not None and db is not None:
            diffs.append(db - da)
    diffs.sort()
    if not diffs:
        return sb - sa, None, None
    return sb - sa, _percentile(diffs, 0.025), _percentile(diffs, 0.975)


def compare(dirs: list[Path], *, n: int = 2000, seed: int = 0) -> list[Comparison]:
    if len(dirs) < 2:
        raise ConfigError("eval-compare needs at least two eval directories")
    loaded = [load_predictions(d) for d in dirs]
    names = {s.get("benchmark") for s, _ in loaded}
    if len(names) != 1:
        raise ConfigError(
            f"eval-compare compares one benchmark at a time, got {sorted(map(str, names))}"
        )
    bench = get_benchmark(str(names.pop()))
    _, base_preds = loaded[0]
    base = {p["id"]: p for p in base_preds}
    rows = []
    for d, (_, preds) in zip(dirs[1:], loaded[1:], strict=True):
        other = {p["id"]: p for p in preds}
        shared = sorted(set(base) & set(other))
        a, b = [base[i] for i in shared], [other[i] for i in shared]
        diff, low, high = paired_bootstrap(bench.statistic, a, b, n=n, seed=seed)
        rows.append(
            Comparison(
                baseline=str(dirs[0]),
                other=str(d),
                metric=bench.headline[1],
                shared=len(shared),
                a=bench.statistic(a) if a else None,
                b=bench.statistic(b) if b else None,
                diff=diff,
                low=low,
                high=high,
            )
        )
    return rows


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def format_table(rows: list[Comparison]) -> str:
    head = ["baseline (A)", "other (B)", "metric", "n", "A", "B", "B-A", "95% CI"]
    body = [
        [
            r.baseline,
            r.other,
            r.metric,
            str(r.shared),
            _num(r.a),
            _num(r.b),
            _num(r.diff),
            f"[{_num(r.low)}, {_num(r.high)}]",
        ]
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [head, *body]
    ]
    return "\n".join(lines)
