"""`diffcap train-dpo`: review votes between two systems become preference pairs (ties
dropped and counted), and TRL DPO on top of the SFT adapter raises the chosen-minus-rejected
log-probability margin."""

from __future__ import annotations

import json

import pytest

from diffcap.errors import ConfigError
from diffcap.store.votes import VoteStore
from diffcap.train.dpo import preference_margin, preference_pairs
from support.cli import diffcap
from support.fault_server import FaultServer
from support.teacher import teacher_run

OTHER = "Something else happens somewhere."


@pytest.fixture(scope="module")
def reviewed(teacher, tmp_path_factory):
    """A second system ("other", a worse captioner) and votes: the teacher's run wins on two
    videos, one tie; one vote on a system that is not given."""
    root = tmp_path_factory.mktemp("other")
    with FaultServer(reply=lambda body: OTHER) as srv:
        other = teacher_run(teacher.videos, root / "other", srv)
    db = root / "votes.sqlite"
    store = VoteStore(db)
    store.record("ann", "clip0", "run", "other", left="run", choice="left")
    store.record("ann", "clip1", "run", "other", left="other", choice="right")
    store.record("ann", "clip2", "run", "other", left="run", choice="tie")
    store.record("bob", "clip0", "run", "elsewhere", left="run", choice="left")
    store.close()
    return teacher.run_dir, other, db


def test_votes_become_pairs(reviewed, tmp_path):
    run, other, db = reviewed
    rows, report = preference_pairs(db, [str(run), str(other)], task="fast", work=tmp_path)
    assert (report.votes, report.pairs, report.ties, report.unmatched) == (4, 2, 1, 1)
    assert "1 ties dropped" in report.line()
    assert {r["video_id"] for r in rows} == {"clip0", "clip1"}
    assert all(r["chosen"] == "A red ball rolls left on grass." for r in rows)
    assert all(r["rejected"] == OTHER and r["task"] == "fast" and len(r["images"]) == 1
               for r in rows)  # fmt: skip
    # --task summary: the prompt is slide mode's timeline of the prompt run (text only).
    rows, _ = preference_pairs(db, [str(run), str(other)], task="summary", work=tmp_path / "s")
    assert len(rows) == 2 and all(r["images"] == [] for r in rows)
    assert all("The ball rolls to the left." in r["prompt"] for r in rows)
    ties = tmp_path / "ties.sqlite"
    store = VoteStore(ties)
    store.record("ann", "clip0", "run", "other", left="run", choice="tie")
    store.close()
    with pytest.raises(ConfigError, match=r"no preference pairs: 1 votes .*1 ties dropped"):
        preference_pairs(ties, [str(run), str(other)], task="fast", work=tmp_path / "w")
    with pytest.raises(ConfigError, match="no vote database"):
        preference_pairs(tmp_path / "none.sqlite", [str(run)], task="fast", work=tmp_path)


def test_dpo_raises_the_margin(reviewed, lora_sft, tmp_path, capsys):
    import torch
    import transformers as tf

    from diffcap.models.transformers_backend import load_pretrained

    run, other, db = reviewed
    out = tmp_path / "dpo"
    rc = diffcap(
        "train-dpo", str(run), str(other), "--db", str(db), "--model", str(lora_sft.out),
        "--out", str(out), "--max-steps", "4", "--lr", "1e-2", "--beta", "0.1",
        "--lora-dropout", "0", "--batch-size", "2",
    )  # fmt: skip
    assert rc == 0
    assert "ties dropped" in capsys.readouterr().out
    m = json.loads((out / "train_metrics.json").read_text())
    assert m["steps"] == 4 and m["train_samples"] == 2
    assert m["pairs"]["ties"] == 1 and m["pairs"]["unmatched"] == 1
    assert m["final_margin"] > m["initial_margin"] + 1.0, m  # measured: 27.6 -> 30.6
    # The new adapter sits on the merged SFT model (written to OUT/start) and reloads to
    # the measured margin.
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == str((out / "start").resolve())
    rows, _ = preference_pairs(db, [str(run), str(other)], task="fast", work=tmp_path / "w")
    processor, model = load_pretrained(tf, str(out), torch.float32)
    assert preference_margin(model, processor, rows) == pytest.approx(m["final_margin"], rel=1e-3)
    assert "trl, dpo" in (out / "README.md").read_text()
