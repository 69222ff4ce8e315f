"""TempCompass (Liu et al., arXiv 2403.00476): temporal perception in five dimensions (action,
speed, direction, order, attribute_change) and three answer formats.

Official files (``llyx97/TempCompass``: ``questions/``): ``multi-choice.json``,
``yes_no.json`` and ``caption_matching.json``, each ``{video_id: {dimension: [{"question",
"answer"}]}}``. ``--data`` is that folder (every format present) or one file; the format is
the file's stem. Videos are ``<video_id>.mp4`` under ``--videos``.

The answer prompts are the release's inference ones; answers are scored with its
hand-written matching rules (``eval_*.py``). An answer no rule matches goes, as released, to
the judge (``--judge-model``) with the release's "Correct"/"Incorrect" prompt; without a judge
it is rated 0, the release's ``--disable_llm``. ``answered`` is the release's
``match_success`` (a rule read the answer), so ``accuracy_answered`` shows what the rules
could read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from diffcap.eval.base import (
    Benchmark,
    BenchmarkFileError,
    EvalContext,
    EvalItem,
    named_files,
    read_json,
    require_field,
)
from diffcap.eval.extract import (
    tempcompass_caption_matching,
    tempcompass_mc,
    tempcompass_yes_no,
)
from diffcap.eval.judges import (
    TEMPCOMPASS_SYSTEM,
    JudgeAnswerError,
    parse_tempcompass_rating,
    tempcompass_judge_prompt,
)
from diffcap.eval.scoring import group_by, tally

TASKS = ("multi-choice", "yes_no", "caption_matching")
ANSWER_PROMPTS = {
    "multi-choice": "\nPlease directly give the best option:",
    "yes_no": "\nPlease answer yes or no:",
    "caption_matching": "\nPlease directly give the best option:",
}
DIMENSIONS = ("action", "speed", "direction", "order", "attribute_change")


class TempCompass(Benchmark):
    name = "tempcompass"
    chart_dim = "dimension"

    def load(self, path: Path) -> list[EvalItem]:
        items: list[EvalItem] = []
        for f in named_files(path, TASKS, ".json", "TempCompass questions"):
            items += self._task(f)
        return items

    def _task(self, path: Path) -> list[EvalItem]:
        data = read_json(path)
        if not isinstance(data, dict):
            raise BenchmarkFileError(f"{path}: expected {{video_id: {{dimension: [...]}}}}")
        out = []
        for vid, dims in data.items():
            if not isinstance(dims, dict):
                raise BenchmarkFileError(f"{path}: video {vid!r}: expected {{dimension: [...]}}")
            for dim, questions in dims.items():
                if not isinstance(questions, list):
                    raise BenchmarkFileError(f"{path}: {vid!r}/{dim}: expected a list")
                for i, q in enumerate(questions):
                    where = f"{path}: {vid!r}/{dim}[{i}]"
                    out.append(
                        EvalItem(
                            item_id=f"{path.stem}/{vid}/{dim}/{i}",
                            video=str(vid),
                            question=require_field(q, "question", where),
                            answer=require_field(q, "answer", where),
                            dims={"task": path.stem, "dimension": dim},
                            where=where,
                        )
                    )
        return out

    async def evaluate(self, item: EvalItem, ctx: EvalContext) -> dict[str, Any]:
        task = item.dims["task"]
        raw = await ctx.ask(item.question + ANSWER_PROMPTS[task], max_tokens=64)
        rating = _rule(task, raw, item)
        out: dict[str, Any] = {
            "raw": raw,
            "extracted": None if rating is None else raw.strip(),
            "answer": item.answer,
            "answered": rating is not None,  # the release's "match_success"
        }
        if rating is None and ctx.judge is not None:
            prompt = tempcompass_judge_prompt(task, item.question, item.answer, raw)
            said = await ctx.ask_judge(prompt, system=TEMPCOMPASS_SYSTEM)
            try:
                rating = parse_tempcompass_rating(said)
            except JudgeAnswerError:
                rating = 0  # as released after its retries
            out["judge_said"] = said
        out["correct"] = bool(rating)
        return out

    def aggregate(self, preds: list[dict[str, Any]]) -> dict[str, Any]:
        out = tally(preds, ["task", "dimension"])
        # The release's table: every (format, dimension) cell.
        cells = {
            task: tally(sub, ["dimension"])["by"].get("dimension", {})
            for task, sub in group_by(preds, "task").items()
        }
        out["by_task_dimension"] = cells
        return out


def _rule(task: str, raw: str, item: EvalItem) -> int | None:
    """The release's hand-written rule of the task: 1, 0, or None (no rule reads it)."""
    if task == "multi-choice":
        return tempcompass_mc(raw, item.answer)
    if task == "yes_no":
        return tempcompass_yes_no(raw, item.answer)
    return tempcompass_caption_matching(raw, item.question, item.answer)
