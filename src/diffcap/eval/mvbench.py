"""MVBench (Li et al., arXiv 2311.17005): 20 temporal tasks, multiple choice.

Official files (``OpenGVLab/MVBench`` on Hugging Face): ``json/<task>.json``, each a list of
``{"video", "question", "candidates": [...], "answer": "<the right candidate>"}`` with
optional ``start``/``end`` seconds. ``--data`` is the ``json`` folder (every task) or one
task file; the task is the file's stem.

Videos: the files under ``--videos`` as released (``star/Charades_v1_480/x.mp4``), and the
sources released as folders of frames (``tvqa/frames_fps3_hq/<clip>/00001.jpg``..., read at 3
fps as the notebook does).

Followed: Ask-Anything ``video_chat2/mvbench.ipynb`` (71ac7a2, 2023-12-18). Its prompt: the
system prompt below as the system turn and again at the start of the user turn, then
"Question: ...\nOptions:\n(A) ...", "\nOnly give the best option.", and the assistant's reply
starting with "Best option:(" (a prefill: ``--prefill``). The released check (``check_ans``)
gives ``accuracy`` over all items (the notebook's "Total Acc") and per task;
``task_mean_accuracy`` is the mean of the task accuracies. ``accuracy_answered`` divides by
non-empty replies, lmms-eval's denominator (its own letter matching differs).
Deviation (off with ``--official-quirks``): an empty reply is wrong, where the released
check counts it right ("(" is inside every option).
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

from diffcap.eval.base import (
    Benchmark,
    BenchmarkFileError,
    EvalContext,
    EvalItem,
    need_path,
    read_json,
    require_field,
)
from diffcap.eval.extract import mvbench_correct, mvbench_letter
from diffcap.eval.scoring import tally

SYSTEM = (
    "Carefully watch the video and pay attention to the cause and sequence of events, the "
    "detail and movement of objects, and the action and pose of persons. Based on your "
    "observations, select the best option that accurately addresses the question.\n"
)
QUESTION_SUFFIX = "\nOnly give the best option.\n"
ANSWER_PREFIX = "Best option:("


class MVBench(Benchmark):
    name = "mvbench"

    def load(self, path: Path) -> list[EvalItem]:
        need_path(path, "MVBench json folder or task file")
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        if not files:
            raise BenchmarkFileError(f"{path}: no <task>.json files (MVBench's json/ folder)")
        items: list[EvalItem] = []
        for f in files:
            items += self._task(f)
        return items

    def _task(self, path: Path) -> list[EvalItem]:
        data = read_json(path)
        if not isinstance(data, list):
            raise BenchmarkFileError(f"{path}: expected a JSON list of questions")
        out = []
        for i, q in enumerate(data):
            where = f"{path}: item {i}"
            video = require_field(q, "video", where)
            question = require_field(q, "question", where)
            cands = require_field(q, "candidates", where, list)
            answer = require_field(q, "answer", where)
            if answer not in cands:
                raise BenchmarkFileError(f"{where}: field 'answer' is not one of 'candidates'")
            letter = string.ascii_uppercase[cands.index(answer)]
            options = "\n".join(f"({string.ascii_uppercase[j]}) {c}" for j, c in enumerate(cands))
            span = (q.get("start"), q.get("end")) if "start" in q or "end" in q else None
            out.append(
                EvalItem(
                    item_id=f"{path.stem}/{i}",
                    video=video,
                    question=f"Question: {question}\nOptions:\n{options}",
                    answer=f"({letter}) {answer}",
                    dims={"task": path.stem},
                    data={"letter": letter, "span": span},
                    where=where,
                )
            )
        return out

    async def evaluate(self, item: EvalItem, ctx: EvalContext) -> dict[str, Any]:
        prompt = f"{SYSTEM}{item.question}{QUESTION_SUFFIX}"  # system_llm=True: both places
        raw = await ctx.ask(prompt, system=SYSTEM, max_tokens=100, prefill=ANSWER_PREFIX)
        quirks = self.settings.official_quirks
        return {
            "raw": raw,
            "extracted": mvbench_letter(raw),
            "answer": item.data["letter"],
            "correct": mvbench_correct(raw, item.answer, official_quirks=quirks),
            "answered": raw != "",  # lmms-eval's: any non-empty reply
        }

    def aggregate(self, preds: list[dict[str, Any]]) -> dict[str, Any]:
        out = tally(preds, ["task"])
        # MVBench's headline is the mean of the per-task accuracies.
        tasks = [t["accuracy"] for t in out["by"].get("task", {}).values()]
        out["overall"]["task_mean_accuracy"] = sum(tasks) / len(tasks) if tasks else None
        return out
