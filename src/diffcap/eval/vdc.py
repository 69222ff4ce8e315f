"""VDC with VDCscore (Chai et al., AuroraCap, arXiv 2410.03051): detailed captions judged by
question answering.

Official files (``rese1f/aurora`` ``post_eval/``): ``camera.jsonl``, ``short.jsonl``,
``background.jsonl``, ``main_object.jsonl``, ``detailed.jsonl``; each line is
``{video_id: [{"question", "answer", "category"}, ...]}``. ``--data`` is that folder (every
dimension present) or one file; the dimension is the file's stem. One item per (dimension,
video).

Per item, as ``process_vdc_result.py``: for each QA pair the judge answers the question from
the caption alone, then grades its answer against the ground truth (``yes``/``no`` and 0-5).
The item's accuracy is the share of ``yes`` and its score the mean grade. Followed:
``rese1f/aurora`` at 2bf68d5 (2025-06-04). The headline is the released one: a dimension's
``accuracy`` / ``score`` are the means over its videos whose accuracy and score are both
non-zero (the released script drops the others: ``dropped_zero``), and ``overall`` is the mean
of the dimensions. diffcap's means over every scored video are ``accuracy_all_videos`` /
``score_all_videos``. A grade the judge answers unreadably drops the video (the release
catches the error and goes on; no retry), counted as ``judge_failed``.

The caption comes from a diffcap run (one caption for every dimension) or, with an image
input mode, from the model under test asked with one of the dimension's released prompts:
picked by a generator seeded with ``--seed``, the item's dimension and video (the release
picks with an unseeded ``random.choice``), so a rerun asks the same and is replayed.
"""

from __future__ import annotations

import asyncio
import random
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from diffcap.eval.base import (
    Benchmark,
    BenchmarkFileError,
    EvalContext,
    EvalItem,
    named_files,
    read_jsonl,
    require_field,
)
from diffcap.eval.judges import (
    JudgeAnswerError,
    parse_vdc_grade,
    vdc_answer_prompts,
    vdc_grade_prompts,
)
from diffcap.eval.scoring import group_by, mean

DIMENSIONS = ("camera", "short", "background", "main_object", "detailed")


@cache
def caption_prompts() -> dict[str, list[str]]:
    text = resources.files("diffcap.eval").joinpath("vdc_prompts.yaml").read_text("utf-8")
    data: dict[str, list[str]] = yaml.safe_load(text)
    return data


def caption_prompt(dimension: str, video: str, seed: int) -> str:
    """The seeded choice of the dimension's caption prompt for one video."""
    prompts = caption_prompts()[dimension]
    return random.Random(f"{seed}:{dimension}:{video}").choice(prompts)


class VDC(Benchmark):
    name = "vdc"
    chart_dim = "dimension"
    scores_captions = True
    headline = ("accuracy", "VDCscore accuracy")

    def load(self, path: Path) -> list[EvalItem]:
        items: list[EvalItem] = []
        for f in named_files(path, DIMENSIONS, ".jsonl", "VDC dimension"):
            for n, row in read_jsonl(f):
                items += [self._item(f"{f}:{n}", f.stem, vid, qas) for vid, qas in row.items()]
        return items

    def _item(self, where: str, dim: str, vid: str, qas: Any) -> EvalItem:
        if not isinstance(qas, list) or not qas:
            raise BenchmarkFileError(f"{where}: video {vid!r} should map to a list of QA pairs")
        pairs = []
        for i, qa in enumerate(qas):
            at = f"{where}: {vid!r}[{i}]"
            pairs.append(
                {
                    "question": require_field(qa, "question", at),
                    "answer": str(require_field(qa, "answer", at, (str, int, float))),
                }
            )
        return EvalItem(
            item_id=f"{dim}/{vid}",
            video=vid,
            dims={"dimension": dim},
            data={"qa": pairs},
            where=where,
        )

    async def evaluate(self, item: EvalItem, ctx: EvalContext) -> dict[str, Any]:
        dim = item.dims["dimension"]
        if ctx.input_mode == "caption":
            caption = ctx.caption or ""
        else:
            caption = await ctx.ask(caption_prompt(dim, item.video, ctx.seed), max_tokens=1024)
        try:
            graded = await asyncio.gather(*(_grade(ctx, caption, qa) for qa in item.data["qa"]))
        except JudgeAnswerError as exc:
            return {"raw": caption, "judge_error": str(exc), "score": None}
        accuracy = sum(1 for g in graded if g["pred"] == "yes") / len(graded)
        return {
            "raw": caption,
            "accuracy": accuracy,
            "score": sum(g["score"] for g in graded) / len(graded),
            "qa": graded,
        }

    def aggregate(self, preds: list[dict[str, Any]]) -> dict[str, Any]:
        ok = [p for p in preds if p.get("score") is not None]
        by = {d: _means(ps) for d, ps in group_by(ok, "dimension").items()}
        overall: dict[str, Any] = {}
        for key in ("accuracy", "score", "accuracy_all_videos", "score_all_videos"):
            overall[key] = mean(v[key] for v in by.values() if v[key] is not None)
        overall.update(
            count=sum(v["count"] for v in by.values()),
            videos=len(ok),
            dropped_zero=sum(v["dropped_zero"] for v in by.values()),
            judge_failed=len(preds) - len(ok),
        )
        return {"overall": overall, "by": {"dimension": by}}

    def metric(self, pred: dict[str, Any]) -> float:
        return float(pred.get("accuracy") or 0.0)

    def statistic(self, preds: list[dict[str, Any]]) -> float | None:
        """Overall accuracy as ``aggregate`` computes it (the released means)."""
        ok = [p for p in preds if p.get("score") is not None]
        dims = group_by(ok, "dimension").values()
        return mean(v for ps in dims if (v := _means(ps)["accuracy"]) is not None)


async def _grade(ctx: EvalContext, caption: str, qa: dict[str, str]) -> dict[str, Any]:
    system, user = vdc_answer_prompts(caption, qa["question"])
    response = await ctx.ask_judge(user, system=system)
    system, user = vdc_grade_prompts(qa["question"], qa["answer"], response)
    matched, score = parse_vdc_grade(await ctx.ask_judge(user, system=system))
    return {**qa, "response": response, "pred": "yes" if matched else "no", "score": score}


def _means(preds: list[dict[str, Any]]) -> dict[str, Any]:
    kept = [p for p in preds if p["accuracy"] and p["score"]]  # the released filter
    return {
        "count": len(kept),
        "accuracy": mean(p["accuracy"] for p in kept),
        "score": mean(p["score"] for p in kept),
        "videos": len(preds),
        "dropped_zero": len(preds) - len(kept),
        "accuracy_all_videos": mean(p["accuracy"] for p in preds),
        "score_all_videos": mean(p["score"] for p in preds),
    }
