"""Win / tie / loss rates of the blind review, with Wilson score intervals, and a chart.

    stats = pair_stats(VoteStore("votes.sqlite").votes())
    print(format_table(stats))
    write_chart(stats, "review.png")        # needs matplotlib (the `review` extra)

``wilson_interval(8, 10)`` is about (0.490, 0.943): a 95% interval that stays inside [0, 1]
and behaves well for small counts, unlike the normal approximation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from diffcap._deps import require
from diffcap.store.votes import Vote

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion; (0, 1) when ``n`` is 0.

    Always ``0 <= low <= k/n <= high <= 1``, exactly: rounding can put the bound for
    ``k = 0`` (or ``k = n``) a few ulps on the wrong side of ``p``, which would give an
    error bar a negative length, so the bounds are clamped to ``[0, p]`` and ``[p, 1]``."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, {n}], got {successes}")
    p = successes / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else min(p, max(0.0, centre - half))
    high = 1.0 if successes == n else max(p, min(1.0, centre + half))
    return low, high


@dataclass(frozen=True)
class PairStats:
    """Votes on one pair: ``system_a`` wins, ties, ``system_b`` wins."""

    system_a: str
    system_b: str
    wins: int
    ties: int
    losses: int

    @property
    def n(self) -> int:
        return self.wins + self.ties + self.losses

    def rate(self, count: int) -> float:
        return count / self.n if self.n else 0.0

    def rates(self) -> dict[str, tuple[float, float, float]]:
        """``{"win"|"tie"|"loss": (rate, low, high)}`` from system_a's side."""
        return {
            name: (self.rate(c), *wilson_interval(c, self.n))
            for name, c in (("win", self.wins), ("tie", self.ties), ("loss", self.losses))
        }


def pair_stats(votes: Iterable[Vote]) -> list[PairStats]:
    """Counts per pair of systems (sorted by pair), from ``system_a``'s point of view."""
    counts: dict[tuple[str, str], list[int]] = {}
    for v in votes:
        c = counts.setdefault((v.system_a, v.system_b), [0, 0, 0])
        if v.winner is None:
            c[1] += 1
        elif v.winner == v.system_a:
            c[0] += 1
        else:
            c[2] += 1
    return [PairStats(a, b, *c) for (a, b), c in sorted(counts.items())]


def format_table(stats: Sequence[PairStats]) -> str:
    """A plain-text table: one line per pair, rates in % with 95% Wilson intervals."""
    if not stats:
        return "no votes yet"
    rows: list[tuple[str, ...]] = [("system A", "system B", "votes", "A wins", "ties", "B wins")]
    for s in stats:
        r = s.rates()
        rows.append(
            (s.system_a, s.system_b, str(s.n), *(_pct(*r[k]) for k in ("win", "tie", "loss")))
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n(rates with 95% Wilson score intervals)"


def _pct(rate: float, low: float, high: float) -> str:
    return f"{rate * 100:5.1f}% [{low * 100:.1f}, {high * 100:.1f}]"


def write_chart(stats: Sequence[PairStats], out: str | Path) -> Path:
    """A PNG of win/tie/loss rates per pair with 95% Wilson error bars."""
    matplotlib = require("matplotlib", purpose="the review chart")
    matplotlib.use("Agg")  # no display needed
    plt = require("matplotlib.pyplot", extra="review")
    out = Path(out)
    labels = [f"{s.system_a}\nvs {s.system_b}\n(n={s.n})" for s in stats]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.8 * len(stats) + 2), 4.0), dpi=100)
    width = 0.26
    colours = {"win": "#2e7d32", "tie": "#9e9e9e", "loss": "#c62828"}
    names = {"win": "A wins", "tie": "tie", "loss": "B wins"}
    for i, kind in enumerate(("win", "tie", "loss")):
        xs = [j + (i - 1) * width for j in range(len(stats))]
        vals = [s.rates()[kind] for s in stats]
        rates = [v[0] for v in vals]
        err = [[v[0] - v[1] for v in vals], [v[2] - v[0] for v in vals]]
        ax.bar(xs, rates, width, yerr=err, capsize=3, color=colours[kind], label=names[kind])
    ax.set_xticks(range(len(stats)), labels)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of votes (95% Wilson CI)")
    ax.set_title("Blind preference review")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    plt.close(fig)
    return out
