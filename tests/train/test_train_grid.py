"""The same command trains a grid-input video LLM in the ShareGPT4Video-8B style: the `grid`
export (one 4x4 keyframe grid per video -> its caption) mixed with a VQA set in LLaVA
conversation JSON."""

from __future__ import annotations

import json

from diffcap.export import ExportOptions, export
from diffcap.export.grid import GRID_PRE_PROMPT
from support.cli import diffcap


def test_grid_export_plus_vqa_mix_trains(teacher, tiny_llava_dir, tmp_path, capsys):
    grid = tmp_path / "grid" / "grid.json"
    export(teacher.run_dir, "grid", grid, ExportOptions(progress=False))
    frame = json.loads(grid.read_text())[0]["image"]
    vqa = tmp_path / "grid" / "vqa.json"  # a VQA mix: the same images, questions + answers
    vqa.write_text(json.dumps([
        {"id": f"q{i}", "image": frame,
         "conversations": [{"from": "human", "value": "<image>\nWhat rolls?"},
                           {"from": "gpt", "value": "A red ball."}]}
        for i in range(2)
    ]))  # fmt: skip
    out = tmp_path / "grid-llm"
    rc = diffcap(
        "train", str(grid), str(vqa), "--model", str(tiny_llava_dir), "--out", str(out),
        "--max-steps", "3", "--lr", "1e-2", "--batch-size", "2", "--eval-fraction", "0",
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    m = json.loads((out / "train_metrics.json").read_text())
    assert m["tasks"] == {"grid": 3, "conversation": 2} and m["steps"] == 3
    assert m["final_train_loss"] < m["initial_train_loss"]
    rows = [json.loads(x) for x in (out / "data" / "examples.jsonl").read_text().splitlines()]
    grid_rows = [r for r in rows if r["task"] == "grid"]
    assert all(r["prompt"].startswith(GRID_PRE_PROMPT) and len(r["images"]) == 1
               for r in grid_rows)  # fmt: skip
    assert {r["answer"] for r in grid_rows} == {"A red ball rolls left on grass."}
