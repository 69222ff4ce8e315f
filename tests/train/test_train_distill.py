"""The paper's distillation loop, end to end on CPU: a teacher captions videos (`diffcap
run` against a loopback server), `diffcap train` fine-tunes a tiny LLaVA on that run, and
`diffcap caption --backend transformers --model OUT` on the same videos reproduces the
teacher's captions greedily — which the untrained model does not."""

from __future__ import annotations

import json

from support.cli import diffcap
from support.teacher import TARGETS

STEPS = 100


def _caption(videos, model, out, templates, *extra) -> dict[str, list[str]]:
    rc = diffcap(
        "caption", str(videos), "--out", str(out), "--backend", "transformers",
        "--model", str(model), "--embedder", "weightless",
        "--no-progress", "--max-tokens", "32", *templates, *extra,
    )  # fmt: skip
    assert rc == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    return {r["video_id"]: [c["content"] for c in r["captions"]] for r in rows}


def _templates(teacher) -> list[str]:
    args = []
    for path in sorted((teacher.run_dir.parent / "templates").glob("*.txt")):
        args += ["--template", f"{path.stem}={path}"]
    return args


def test_train_on_a_teacher_run_reproduces_its_captions(teacher, tiny_llava_dir, tmp_path, capsys):
    templates = _templates(teacher)  # the prompts the teacher run used (the model learns them)
    want = [TARGETS["Describe it."], TARGETS["What changed?"], TARGETS["Summarize."]]
    before = _caption(teacher.videos, tiny_llava_dir, tmp_path / "before.jsonl", templates)
    assert len(before) == 3 and all(caps != want for caps in before.values())

    out = tmp_path / "student"
    rc = diffcap(
        "train", str(teacher.run_dir), "--model", str(tiny_llava_dir), "--out", str(out),
        "--method", "full", "--max-steps", str(STEPS), "--lr", "2e-2", "--batch-size", "4",
        "--eval-fraction", "0", "--save-steps", "50", "--logging-steps", "10",
    )  # fmt: skip
    assert rc == 0
    line = capsys.readouterr().out
    assert f"trained {STEPS} steps on 12 examples" in line

    m = json.loads((out / "train_metrics.json").read_text())
    assert m["steps"] == STEPS and m["train_samples"] == 12 and m["eval_samples"] == 0
    assert m["tasks"] == {"fast": 3, "slide": 6, "summary": 3}
    assert m["initial_train_loss"] > 5.0  # ~ln(vocab): the random model knows nothing
    assert m["final_train_loss"] < 0.05 < m["initial_train_loss"] / 100
    logged = [h["loss"] for h in m["log_history"] if "loss" in h]
    assert len(logged) == STEPS // 10 and logged[-1] < logged[0] / 20
    assert m["seconds"] > 0 and m["samples_seen"] == STEPS * 4
    assert sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*")) == [
        "checkpoint-100",
        "checkpoint-50",
    ]
    card = (out / "README.md").read_text()
    assert f"base_model: {tiny_llava_dir}" in card and "| slide | 6 |" in card
    assert "- method: full" in card and "final_train_loss" in card

    after = _caption(teacher.videos, out, tmp_path / "after.jsonl", templates)
    assert after == {vid: want for vid in before}
    # Fast mode (one grid -> the summary) was trained too, from the same keyframes.
    fast = _caption(teacher.videos, out, tmp_path / "fast.jsonl", templates, "--mode", "fast")
    assert fast == {vid: [TARGETS["Describe the video."]] for vid in before}
