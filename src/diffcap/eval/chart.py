"""One PNG per eval: the headline number overall and per value of one dimension.

write_chart(bench, scores, Path("evals/mv/mvbench.png"))   # needs matplotlib (`eval` extra)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from diffcap._deps import require
from diffcap.eval.base import Benchmark

__all__ = ["chart_bars", "write_chart"]


def chart_bars(bench: Benchmark, scores: dict[str, Any]) -> list[tuple[str, float, int]]:
    """(label, value, count) per bar: "overall" first, then the chart dimension's values."""
    key, _ = bench.headline
    overall = scores.get("overall", {})
    bars = []
    first = bench.overall_key or key
    if overall.get(first) is not None:
        bars.append(("overall", float(overall[first]), int(overall.get("count") or 0)))
    by = (scores.get("by") or {}).get(bench.chart_dim, {})
    for label, cell in by.items():
        if cell.get(key) is not None:
            bars.append((str(label), float(cell[key]), int(cell.get("count") or 0)))
    return bars


def write_chart(bench: Benchmark, scores: dict[str, Any], out: Path) -> Path:
    matplotlib = require("matplotlib", extra="eval", purpose="the eval chart")
    matplotlib.use("Agg")  # no display needed
    plt = require("matplotlib.pyplot", extra="eval")
    bars = chart_bars(bench, scores)
    _, label = bench.headline
    fig, ax = plt.subplots(figsize=(max(4.0, 0.7 * len(bars) + 2), 4.0), dpi=100)
    xs = list(range(len(bars)))
    colours = ["#37474f"] + ["#1e88e5"] * (len(bars) - 1)
    ax.bar(xs, [b[1] for b in bars], color=colours[: len(bars)])
    ax.set_xticks(xs, [f"{b[0]}\n(n={b[2]})" for b in bars], rotation=45, ha="right", fontsize=7)
    top = max([b[1] for b in bars] + [1.0])
    ax.set_ylim(0, top * 1.05)
    ax.set_ylabel(label)
    model = scores.get("model") or scores.get("captions") or ""
    judge = f", judge {scores['judge']}" if scores.get("judge") else ""
    ax.set_title(f"{bench.name} ({scores.get('input')}) {model}{judge}", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    plt.close(fig)
    return out
