"""eval-compare: paired bootstrap intervals over shared item ids, checked against cases
whose answer is known (identical evals, a uniform win, a binomial case by hand)."""

from __future__ import annotations

import json

import pytest

from diffcap.eval.compare import compare
from support.cli import diffcap
from support.evals import write_jsonl


def eval_dir(path, bench, correct: dict[str, bool]):
    path.mkdir()
    (path / "scores.json").write_text(json.dumps({"benchmark": bench, "overall": {}}))
    write_jsonl(
        path / "predictions.jsonl",
        [{"id": i, "dims": {"task": "t"}, "correct": c} for i, c in correct.items()],
    )
    return path


def test_identical_and_uniform_win(tmp_path):
    ids = [str(i) for i in range(20)]
    a = eval_dir(tmp_path / "a", "mvbench", {i: i < "5" for i in ids})
    same = eval_dir(tmp_path / "same", "mvbench", {i: i < "5" for i in ids})
    (row,) = compare([a, same], n=500)
    assert (row.diff, row.low, row.high, row.shared) == (0.0, 0.0, 0.0, 20)
    zero = eval_dir(tmp_path / "zero", "mvbench", dict.fromkeys(ids, False))
    one = eval_dir(tmp_path / "one", "mvbench", dict.fromkeys(ids, True))
    (row,) = compare([zero, one], n=500)
    assert (row.a, row.b, row.diff, row.low, row.high) == (0.0, 1.0, 1.0, 1.0, 1.0)


def test_binomial_interval_and_shared_ids(tmp_path):
    # B is right wherever A is, and on 10 more of 100 items: resampled, B - A is
    # Binomial(100, 0.1) / 100, whose 2.5% and 97.5% quantiles are 0.05 and 0.16.
    ids = [f"q{i:03d}" for i in range(100)]
    a = eval_dir(tmp_path / "a", "videomme", {q: n < 50 for n, q in enumerate(ids)})
    b_items = {q: n < 60 for n, q in enumerate(ids)}
    b_items["extra"] = True  # not in A: ignored
    b = eval_dir(tmp_path / "b", "videomme", b_items)
    (row,) = compare([a, b], n=4000, seed=3)
    assert row.shared == 100
    assert (row.a, row.b, row.diff) == pytest.approx((0.5, 0.6, 0.1))
    assert 0.04 <= row.low <= 0.06 and 0.15 <= row.high <= 0.17
    assert compare([a, b], n=4000, seed=3) == [row]  # seeded: the same interval again


def test_cli_table_and_errors(tmp_path, capsys):
    ids = [str(i) for i in range(10)]
    a = eval_dir(tmp_path / "a", "tempcompass", {i: i in "0123" for i in ids})
    b = eval_dir(tmp_path / "b", "tempcompass", {i: i in "012345" for i in ids})
    c = eval_dir(tmp_path / "c", "tempcompass", dict.fromkeys(ids, False))
    assert diffcap("eval-compare", str(a), str(b), str(c), "--samples", "300") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["baseline", "(A)", "other"]
    assert len(out) == 3 and "0.2000" in out[1] and "-0.4000" in out[2]
    other = eval_dir(tmp_path / "other", "mvbench", {"1": True})
    assert diffcap("eval-compare", str(a), str(other)) == 2
    assert "one benchmark at a time" in capsys.readouterr().err
    assert diffcap("eval-compare", str(a), str(tmp_path)) == 2
    assert "not an eval directory" in capsys.readouterr().err
