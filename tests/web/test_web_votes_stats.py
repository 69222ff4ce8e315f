"""Vote store and review statistics on hand-made vote tables."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from diffcap.store.votes import VoteStore
from diffcap.web.stats import PairStats, format_table, pair_stats, wilson_interval, write_chart


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # Reference values of the 95% Wilson score interval (z = 1.96).
        (8, 10, 0.4902, 0.9433),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (5, 10, 0.2366, 0.7634),
        (1, 20, 0.0089, 0.2361),
        (50, 100, 0.4038, 0.5962),
    ],
)
def test_wilson_interval_known_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=5e-4) and hi == pytest.approx(high, abs=5e-4)


def test_wilson_edges():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_wilson_bounds_hold_for_every_k_up_to_200():
    # exhaustive over n = 1..200 and every k: 0 <= low <= k/n <= high <= 1, and the error
    # bars the chart draws (p - low, high - p) are never negative
    for n in range(1, 201):
        for k in range(n + 1):
            low, high = wilson_interval(k, n)
            p = k / n
            assert 0.0 <= low <= p <= high <= 1.0, (k, n, low, high)
            assert p - low >= 0.0 and high - p >= 0.0
        assert wilson_interval(0, n)[0] == 0.0 and wilson_interval(n, n)[1] == 1.0


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 200), st.integers(0, 200), st.integers(0, 200), st.floats(0.1, 4.0))
def test_rates_stay_in_unit_interval(wins, ties, losses, z):
    s = PairStats("a", "b", wins, ties, losses)
    for rate, low, high in s.rates().values():
        assert 0.0 <= low <= rate <= high <= 1.0
    if s.n:
        for k in (wins, ties, losses):
            low, high = wilson_interval(k, s.n, z)
            assert 0.0 <= low <= k / s.n <= high <= 1.0


@pytest.mark.parametrize("n", [1, 3, 7, 10, 49, 200])
def test_chart_when_one_system_wins_or_loses_every_vote(tmp_path, n):
    # the crash of issue 11: 'yerr' must not contain negative values
    for wins, losses in ((n, 0), (0, n)):
        out = write_chart([PairStats("a", "b", wins, 0, losses)], tmp_path / f"c{wins}.png")
        assert out.read_bytes()[:4] == b"\x89PNG"


def _fill(store: VoteStore) -> None:
    # gpt vs local: gpt wins 8, tie 1, local wins 1 (over 10 videos, 2 reviewers)
    rows = [("gpt", "left")] * 8 + [("gpt", "tie")] + [("local", "left")]
    for i, (left, choice) in enumerate(rows):
        store.record(f"r{i % 2}", f"v{i}", "local", "gpt", left=left, choice=choice)
    # gpt vs other (sorted: gpt < other): other on the left and picked 3 times, gpt 1 time
    for i, (left, choice) in enumerate([("other", "left")] * 3 + [("other", "right")]):
        store.record("r0", f"v{i}", "gpt", "other", left=left, choice=choice)


def test_store_records_winner_and_ignores_repeats(tmp_path):
    store = VoteStore(tmp_path / "v.sqlite")
    assert store.record("ann", "v1", "b", "a", left="b", choice="left")
    assert not store.record("ann", "v1", "a", "b", left="a", choice="right")  # same item again
    assert store.voted("ann") == {("v1", "a", "b")} and store.voted("bob") == set()
    (v,) = store.votes()
    assert (v.system_a, v.system_b, v.left_system, v.choice, v.winner) == (
        "a",
        "b",
        "b",
        "left",
        "b",
    )
    with pytest.raises(ValueError):
        store.record("ann", "v2", "a", "b", left="c", choice="left")
    with pytest.raises(ValueError):
        store.record("ann", "v2", "a", "b", left="a", choice="maybe")
    store.close()
    # schema is versioned; reopening does not migrate twice
    conn = sqlite3.connect(tmp_path / "v.sqlite")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()
    assert len(VoteStore(tmp_path / "v.sqlite").votes()) == 1


def test_pair_stats_and_table(tmp_path):
    store = VoteStore(tmp_path / "v.sqlite")
    _fill(store)
    stats = pair_stats(store.votes())
    assert [(s.system_a, s.system_b, s.wins, s.ties, s.losses) for s in stats] == [
        ("gpt", "local", 8, 1, 1),
        ("gpt", "other", 1, 0, 3),
    ]
    r = stats[0].rates()
    assert r["win"][0] == pytest.approx(0.8)
    assert r["win"][1:] == pytest.approx((0.4902, 0.9433), abs=5e-4)
    assert r["loss"][1:] == pytest.approx((0.0179, 0.4042), abs=5e-4)
    table = format_table(stats)
    assert "gpt" in table and " 80.0% [49.0, 94.3]" in table and " 75.0% [30.1, 95.4]" in table
    assert format_table([]) == "no votes yet"


def test_chart_png_is_written(tmp_path):
    store = VoteStore(tmp_path / "v.sqlite")
    _fill(store)
    out = write_chart(pair_stats(store.votes()), tmp_path / "charts" / "review.png")
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width >= 400 and im.height >= 300
