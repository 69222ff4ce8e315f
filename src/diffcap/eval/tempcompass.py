"""TempCompass (Liu et al., arXiv 2403.00476): temporal perception in five dimensions (action,
speed, direction, order, attribute_change) and four formats (multi-choice, yes_no,
caption_matching, captioning).

Files: every published layout (:mod:`diffcap.eval.tempcompass_data`). Videos are
``<video_id>.mp4`` under ``--videos``.

Followed: ``llyx97/TempCompass`` at e1b4631 (2025-04-04; scoring rules last changed
2024-06-11). Answer prompts are the inference script's (``\\nPlease directly give the best
option:`` / ``\\nPlease answer yes or no:``; captioning's question already ends with
"Generated Caption:"). An answer is cleaned as released (``</s>`` removed, stripped) and read
by the hand-written rules; one no rule reads goes to the judge (``--judge-model``) with the
release's prompt, asked again while its answer says neither "Correct" nor "Incorrect" (11
calls at most, then 0, as released); without a judge it is rated 0 (``--disable_llm``).
Captioning is judged only: the judge answers the video's first multi-choice question from the
caption. ``answered`` is the release's ``match_success``.

Reported as the release prints it: per format, the accuracy per dimension, per fine-grained
aspect (from the release's ``meta_info.json``, when found beside ``--data``) and ``avg`` over
the format's questions; ``overall`` leads with each format's accuracy; ``format_mean_accuracy``
(mean of the formats) and ``pooled_accuracy`` (all questions) are diffcap's.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from diffcap.errors import ConfigError
from diffcap.eval.base import Benchmark, EvalContext, EvalItem
from diffcap.eval.extract import (
    tempcompass_caption_matching,
    tempcompass_caption_rating,
    tempcompass_mc,
    tempcompass_yes_no,
)
from diffcap.eval.judges import JudgeAnswerError, parse_tempcompass_rating
from diffcap.eval.scoring import group_by, mean, tally
from diffcap.eval.tempcompass_data import (
    FORMATS,
    find_meta_info,
    find_prompt_file,
    judge_prompts,
    load_items,
    with_aspects,
)

log = logging.getLogger(__name__)

TASKS = FORMATS
ANSWER_PROMPTS = {
    "multi-choice": "\nPlease directly give the best option:",
    "yes_no": "\nPlease answer yes or no:",
    "caption_matching": "\nPlease directly give the best option:",
    "captioning": "",
}
#: How the judge prompt names the question, per format (the release's f-strings).
QUESTION_LABELS = {
    "multi-choice": "Multi-Choice Question",
    "yes_no": "Yes/No Question",
    "caption_matching": "Caption Matching Question",
}
JUDGE_SYSTEM = "You are an AI assistant for question answering."
DIMENSIONS = ("action", "speed", "direction", "order", "attribute_change")
#: The release's QA judge loop: one call and 10 retries.
JUDGE_TRIES = 11


class TempCompass(Benchmark):
    name = "tempcompass"
    chart_dim = "task"
    headline = ("accuracy", "accuracy (overall: mean of the formats)")
    overall_key: ClassVar[str | None] = "format_mean_accuracy"

    def load(self, path: Path) -> list[EvalItem]:
        return load_items(path)

    def prepare(self, data: Path, items: list[EvalItem], has_judge: bool) -> list[EvalItem]:
        """Find the user's judge prompts (needed with a judge) and ``meta_info.json`` (the
        fine-grained aspect of each question, when the repository root is there); without a
        judge, captioning (judged only) is left out, with a warning."""
        prompt_file = find_prompt_file(data, self.settings.prompts)
        if has_judge and prompt_file is None:
            raise ConfigError(
                "TempCompass's judge prompts are read from the release's prompt_templates.py "
                "(CC BY-NC 4.0, not shipped with diffcap), and none was found",
                hint="pass the repository root as --data, or --prompts PATH/prompt_templates.py",
            )
        if prompt_file is not None:
            judge_prompts(prompt_file)  # readable, before any call
            self.settings = replace(self.settings, prompts=str(prompt_file))
        items = with_aspects(items, find_meta_info(data))
        if has_judge:
            return items
        kept = [it for it in items if it.dims["task"] != "captioning"]
        if len(kept) < len(items):
            log.warning(
                "%d captioning questions left out: that format is judged only (pass --judge-model)",
                len(items) - len(kept),
            )
        return kept

    async def evaluate(self, item: EvalItem, ctx: EvalContext) -> dict[str, Any]:
        task = item.dims["task"]
        raw = await ctx.ask(item.question + ANSWER_PROMPTS[task], max_tokens=128)
        pred = raw.replace("</s>", "").strip()
        if task == "captioning":
            return await self._captioning(item, ctx, raw, pred)
        rating = _rule(task, raw, item)
        out: dict[str, Any] = {
            "raw": raw,
            "extracted": None if rating is None else pred,
            "answer": item.answer,
            "answered": rating is not None,  # the release's "match_success"
        }
        if rating is None and ctx.judge is not None:
            prompt = (
                f"{self._prompts()[task]}\n{QUESTION_LABELS[task]}:\n{item.question}\n"
                f"Ground-Truth Answer: {item.answer}\nModel Prediction: {pred}"
            )
            try:
                rating, said, calls = await ctx.judge_until(
                    prompt, parse_tempcompass_rating, system=JUDGE_SYSTEM, tries=JUDGE_TRIES
                )
                out.update(judge_said=said, judge_calls=calls)
            except JudgeAnswerError as exc:  # after every retry: rated 0, as released
                rating = 0
                out.update(judge_error=str(exc), judge_calls=JUDGE_TRIES)
        out["correct"] = bool(rating)
        return out

    async def _captioning(
        self, item: EvalItem, ctx: EvalContext, raw: str, pred: str
    ) -> dict[str, Any]:
        mc_q, mc_a = item.data["mc_question"], item.data["mc_answer"]
        prompt = (
            f"{self._prompts()['captioning']}\nVideo Description:{pred}\n"
            f"Multi-Choice Question:\n{mc_q}\n"
        )
        said = (await ctx.ask_judge(prompt, system=JUDGE_SYSTEM)).strip()
        if said:
            rating = tempcompass_caption_rating(said, mc_a)
        else:  # the release rates an empty judge answer -1, which then lowers the sum
            rating = -1 if self.settings.official_quirks else 0
        return {
            "raw": raw,
            "extracted": pred,
            "answer": mc_a,
            "answered": bool(said),
            "judge_said": said,
            "rating": rating,
            "correct": rating == 1,
        }

    def _prompts(self) -> dict[str, str]:
        if not self.settings.prompts:
            raise ConfigError("TempCompass's judge prompts were not found", hint="pass --prompts")
        return judge_prompts(Path(self.settings.prompts))

    def metric(self, pred: dict[str, Any]) -> float:
        return float(pred.get("rating", int(bool(pred.get("correct")))))

    def aggregate(self, preds: list[dict[str, Any]]) -> dict[str, Any]:
        out = tally(preds, ["task", "dimension", "aspect"], _summary)
        formats = out["by"].get("task", {})
        overall = {f: formats[f]["accuracy"] for f in TASKS if f in formats}
        overall["format_mean_accuracy"] = mean(overall.values())
        overall["pooled_accuracy"] = out["overall"]["accuracy"]
        out["overall"] = {**overall, **{k: v for k, v in out["overall"].items() if k != "accuracy"}}
        # The release's tables: every (format, dimension) and (format, aspect) cell.
        for dim in ("dimension", "aspect"):
            cells = {
                task: tally(sub, [dim], _summary)["by"].get(dim, {})
                for task, sub in group_by(preds, "task").items()
            }
            if any(cells.values()):
                out[f"by_task_{dim}"] = cells
        return out

    def statistic(self, preds: list[dict[str, Any]]) -> float | None:
        """The mean of the formats' accuracies (``format_mean_accuracy``)."""
        by = group_by(preds, "task").values()
        return mean(sum(self.metric(p) for p in ps) / len(ps) for ps in by if ps)


def _summary(preds: list[dict[str, Any]]) -> dict[str, Any]:
    """The release's sums: ratings (captioning's -1 included) over questions; match rate."""
    count = len(preds)
    total = sum(p.get("rating", int(bool(p.get("correct")))) for p in preds)
    answered = sum(1 for p in preds if p.get("answered"))
    return {
        "count": count,
        "correct": sum(1 for p in preds if p.get("correct")),
        "accuracy": total / count if count else None,
        "answered": answered,
        "match_rate": answered / count if count else None,
    }


def _rule(task: str, raw: str, item: EvalItem) -> int | None:
    """The release's hand-written rule of the task: 1, 0, or None (no rule reads it)."""
    if task == "multi-choice":
        return tempcompass_mc(raw, item.answer)
    if task == "yes_no":
        return tempcompass_yes_no(raw, item.answer)
    return tempcompass_caption_matching(raw, item.question, item.answer)
