"""DREAM-1K with AutoDQ (Wang et al., Tarsier, arXiv 2407.00634): event recall and precision
of a video description, judged by an LLM.

Official file: ``DREAM-1k.jsonl`` (``bytedance/tarsier`` ``data/annotations/``, or the
``omni-research/DREAM-1K`` dataset), one video per line: ``idx``, ``dataset``
(``DREAM/movie_animation``...), ``text.response`` (the reference description),
``video_file``, ``extra_info`` with ``events`` (the reference's events) and ``n_subjects``,
``n_shots``, ``n_events``.

Per video, as the released metric: the judge extracts at most 10 events from the (lower-cased)
caption; recall = share of reference events the caption *entails*; precision = share of the
caption's events the reference entails (``neutral`` does not count either way). Overall
recall/precision are the means over each ``dataset`` subset's means; F1 is the harmonic mean of
those means (per subset and overall), and the same per bucket of ``n_subjects``, ``n_shots``,
``n_events`` (the released bucket bounds). A video whose judge answers cannot be read is
counted under ``judge_failed`` and left out, like the release's "Failed" column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from diffcap.eval.base import (
    Benchmark,
    BenchmarkFileError,
    EvalContext,
    EvalItem,
    need_path,
    read_jsonl,
    require_field,
)
from diffcap.eval.judges import (
    JudgeAnswerError,
    entailment_prompt,
    events_prompt,
    parse_entailment,
    parse_events,
)
from diffcap.eval.scoring import f1, group_by, mean

#: The released bucket bounds of each count in ``extra_info``.
BUCKETS: dict[str, list[tuple[str, Any]]] = {
    "subjects": [
        ("<=1", lambda n: n <= 1),
        ("==2", lambda n: n == 2),
        ("==3", lambda n: n == 3),
        (">=4", lambda n: n >= 4),
    ],
    "shots": [
        ("<=1", lambda n: n <= 1),
        ("==2", lambda n: n == 2),
        ("==3", lambda n: n == 3),
        (">=4", lambda n: n >= 4),
    ],
    "events": [
        ("<=3", lambda n: n <= 3),
        ("in [4, 5]", lambda n: n in (4, 5)),
        ("in [6, 7]", lambda n: n in (6, 7)),
        (">=8", lambda n: n >= 8),
    ],
}
PLACEHOLDER = "<placeholder>"
DEFAULT_PROMPT = "Describe the video in detail."


class Dream1K(Benchmark):
    name = "dream1k"
    chart_dim = "dataset"
    scores_captions = True
    headline = ("f1", "AutoDQ F1")

    def load(self, path: Path) -> list[EvalItem]:
        need_path(path, "DREAM-1K jsonl")
        if path.is_dir():
            found = sorted(path.glob("*.jsonl"))
            if not found:
                raise BenchmarkFileError(f"{path}: no .jsonl file (DREAM-1k.jsonl)")
            path = found[0]
        items = [self._item(f"{path}:{n}", row) for n, row in read_jsonl(path)]
        seen: set[str] = set()
        for it in items:
            if it.item_id in seen:
                raise BenchmarkFileError(f"{it.where}: duplicate idx {it.item_id!r}")
            seen.add(it.item_id)
        return items

    def _item(self, where: str, row: dict[str, Any]) -> EvalItem:
        idx = str(require_field(row, "idx", where, (int, str)))
        text = require_field(row, "text", where, dict)
        response = require_field(text, "response", f"{where}: text")
        extra = row.get("extra_info") or {}
        if not isinstance(extra, dict):
            raise BenchmarkFileError(f"{where}: field 'extra_info' should be an object")
        events = extra.get("events")
        if events is not None and not (
            isinstance(events, list) and all(isinstance(e, str) for e in events)
        ):
            raise BenchmarkFileError(f"{where}: field 'extra_info.events' should be a string list")
        video_file = str(row.get("video_file") or "")
        keys = [idx] + ([Path(video_file).stem] if video_file and video_file != PLACEHOLDER else [])
        return EvalItem(
            item_id=idx,
            video=keys[-1],
            answer=response,
            dims={"dataset": str(row.get("dataset", "DREAM"))},
            data={
                "events": events,
                "keys": keys,
                "video_file": "" if video_file == PLACEHOLDER else video_file,
                "prompt": str(text.get("prompt") or DEFAULT_PROMPT).replace("<video>", "").strip(),
                "counts": {k: extra.get(f"n_{k}") for k in BUCKETS},
            },
            where=where,
        )

    async def evaluate(self, item: EvalItem, ctx: EvalContext) -> dict[str, Any]:
        if ctx.input_mode != "caption":  # the model under test describes the video itself
            ctx.caption = await ctx.ask(item.data["prompt"], max_tokens=1024)
        caption = (ctx.caption or "").lower()
        reference = item.answer.lower()
        try:
            gt_events = item.data["events"]
            if gt_events is None:
                gt_events = parse_events(await ctx.ask_judge(events_prompt(_quote(reference))))
            pred_events = parse_events(await ctx.ask_judge(events_prompt(_quote(caption))))
            recall, rel_r = await _entailed(ctx, gt_events, caption)
            precision, rel_p = await _entailed(ctx, pred_events, reference)
        except JudgeAnswerError as exc:
            return {"raw": ctx.caption, "judge_error": str(exc), "score": None}
        return {
            "raw": ctx.caption,
            "recall": recall,
            "precision": precision,
            "score": f1(recall, precision),
            "events_gt": [
                {"event": e, "relationship": r} for e, r in zip(gt_events, rel_r, strict=True)
            ],
            "events_pred": [
                {"event": e, "relationship": r} for e, r in zip(pred_events, rel_p, strict=True)
            ],
            "counts": item.data["counts"],
        }

    def aggregate(self, preds: list[dict[str, Any]]) -> dict[str, Any]:
        ok = [p for p in preds if p.get("score") is not None]
        failed = len(preds) - len(ok)
        by_set = {k: _prf(v) for k, v in group_by(ok, "dataset").items()}
        recall = mean(s["recall"] for s in by_set.values())
        precision = mean(s["precision"] for s in by_set.values())
        overall = {
            "count": len(ok),
            "judge_failed": failed,
            "recall": recall,
            "precision": precision,
            "f1": f1(recall, precision),
        }
        buckets = {}
        for name, bounds in BUCKETS.items():
            buckets[name] = {
                label: _prf(
                    [p for p in ok if _count(p, name) is not None and test(_count(p, name))]
                )
                for label, test in bounds
            }
        return {"overall": overall, "by": {"dataset": by_set}, "buckets": buckets}

    def metric(self, pred: dict[str, Any]) -> float:
        return float(pred.get("score") or 0.0)

    def statistic(self, preds: list[dict[str, Any]]) -> float | None:
        """Overall F1 as ``aggregate`` computes it (means of the subsets' means)."""
        ok = [p for p in preds if p.get("score") is not None]
        sets = group_by(ok, "dataset").values()
        recall = mean(mean(p["recall"] for p in ps) or 0.0 for ps in sets)
        precision = mean(mean(p["precision"] for p in ps) or 0.0 for ps in sets)
        return f1(recall, precision)


def _quote(text: str) -> str:
    return text.replace('"', "'")  # as the release, before the extraction prompt


def _count(pred: dict[str, Any], name: str) -> Any:
    return (pred.get("counts") or {}).get(name)


def _prf(preds: list[dict[str, Any]]) -> dict[str, Any]:
    r = mean(p["recall"] for p in preds)
    p_ = mean(p["precision"] for p in preds)
    return {"count": len(preds), "recall": r, "precision": p_, "f1": f1(r, p_)}


async def _entailed(
    ctx: EvalContext, events: list[str], description: str
) -> tuple[float, list[str]]:
    """Share of ``events`` the judge says ``description`` entails, and each relationship.
    No events scores 1.0, as released (which still asked the judge about the other text as
    one event; that answer cannot change the score, so the call is not paid)."""
    if not events:
        return 1.0, []
    rels = parse_entailment(
        await ctx.ask_judge(entailment_prompt(events, description)), len(events)
    )
    return sum(r == "entailment" for r in rels) / len(events), rels
