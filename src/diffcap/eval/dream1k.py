"""DREAM-1K with AutoDQ (Wang et al., Tarsier, arXiv 2407.00634): event recall and precision
of a video description, judged by an LLM.

Files, any published layout (``--data`` a file, or a folder holding one):

- ``DREAM-1k.jsonl`` of ``bytedance/tarsier`` ``data/annotations/`` as on main since
  2025-01-24 (the "messages" layout): ``idx``, ``dataset`` (``DREAM/movie_animation``...),
  ``messages`` (the user turn's video ``video_file`` and prompt text, the assistant turn's
  ``reference`` description), ``extra_info`` with ``events``, ``n_subjects``, ``n_shots``,
  ``n_events``;
- the previous file (2024-07-05): ``text.prompt`` / ``text.response``, ``video_file``;
- the Hugging Face dataset ``omni-research/DREAM-1K`` (``json/metadata.json``): ``idx``,
  ``video_file``, ``source``, ``description``, ``events``, ``n_*`` (strings).

Per video, as ``evaluation/metrics/evaluate_dream_gpt.py`` (tarsier 63de87a, 2025-08-14): the
judge extracts at most 10 events from the (lower-cased) caption; recall = share of reference
events the caption *entails*; precision = share of the caption's events the reference entails
(``neutral`` counts for neither). Each judge step is asked again while its answer cannot be
parsed, 10 calls at most, as released; a video still unreadable then is ``judge_failed`` and
left out, like the release's "Failed". Overall recall/precision are the means over each
``dataset`` subset's means; F1 is the harmonic mean of those means (per subset and overall),
and the same per bucket of ``n_subjects``, ``n_shots``, ``n_events`` (the released bounds).
"""

from __future__ import annotations

import ast
import contextlib
import json
from pathlib import Path
from typing import Any

from diffcap.eval.base import (
    Benchmark,
    BenchmarkFileError,
    EvalContext,
    EvalItem,
    need_path,
    read_json,
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
#: The release's judge loops: at most 10 calls per step while the answer cannot be parsed.
JUDGE_TRIES = 10


class Dream1K(Benchmark):
    name = "dream1k"
    chart_dim = "dataset"
    scores_captions = True
    headline = ("f1", "AutoDQ F1")

    def load(self, path: Path) -> list[EvalItem]:
        need_path(path, "DREAM-1K file")
        if path.is_dir():
            found = sorted(path.glob("*.jsonl")) or sorted(path.glob("json/metadata.json"))
            found = found or sorted(path.glob("metadata.json"))
            if not found:
                raise BenchmarkFileError(
                    f"{path}: no DREAM-1k.jsonl (tarsier) or json/metadata.json (Hugging Face)"
                )
            path = found[0]
        items = [self._item(where, row) for where, row in _rows(path)]
        seen: set[str] = set()
        for it in items:
            if it.item_id in seen:
                raise BenchmarkFileError(f"{it.where}: duplicate idx {it.item_id!r}")
            seen.add(it.item_id)
        return items

    def _item(self, where: str, row: dict[str, Any]) -> EvalItem:
        idx = str(require_field(row, "idx", where, (int, str)))
        if "messages" in row:
            prompt, response, video_file = _messages(row["messages"], where)
        elif "text" in row:
            text = require_field(row, "text", where, dict)
            response = require_field(text, "response", f"{where}: text")
            prompt, video_file = str(text.get("prompt") or ""), str(row.get("video_file") or "")
        elif "description" in row:  # the Hugging Face metadata
            response, prompt = require_field(row, "description", where), ""
            video_file = str(row.get("video_file") or "")
        else:
            raise BenchmarkFileError(f"{where}: missing field 'messages' (or 'text')")
        extra = row.get("extra_info") or {k: row.get(k) for k in ("events", *_COUNTS)}
        if not isinstance(extra, dict):
            raise BenchmarkFileError(f"{where}: field 'extra_info' should be an object")
        events = _events(extra.get("events"), where)
        video_file = "" if video_file == PLACEHOLDER else video_file
        keys = [idx] + ([Path(video_file).stem] if video_file else [])
        return EvalItem(
            item_id=idx,
            video=keys[-1],
            answer=response,
            dims={"dataset": str(row.get("dataset") or row.get("source") or "DREAM")},
            data={
                "events": events,
                "keys": keys,
                "video_file": video_file,
                "prompt": prompt.replace("<video>", "").strip() or DEFAULT_PROMPT,
                "counts": {k: _int(extra.get(f"n_{k}")) for k in BUCKETS},
            },
            where=where,
        )

    async def evaluate(self, item: EvalItem, ctx: EvalContext) -> dict[str, Any]:
        if ctx.input_mode != "caption":  # the model under test describes the video itself
            ctx.caption = await ctx.ask(item.data["prompt"], max_tokens=1024)
        caption = (ctx.caption or "").lower()
        reference = item.answer.lower()
        calls = {"n": 0}
        try:
            gt_events = item.data["events"]
            if gt_events is None:
                gt_events = await _events_of(ctx, reference, calls)
            pred_events = await _events_of(ctx, caption, calls)
            quirks = self.settings.official_quirks
            recall, rel_r = await _entailed(ctx, gt_events, caption, reference, quirks, calls)
            precision, rel_p = await _entailed(ctx, pred_events, reference, caption, quirks, calls)
        except JudgeAnswerError as exc:
            return {
                "raw": ctx.caption,
                "judge_error": str(exc),
                "score": None,
                "judge_calls": calls["n"],
            }
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
            "judge_calls": calls["n"],
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


async def _events_of(ctx: EvalContext, text: str, calls: dict[str, int]) -> list[str]:
    events, _, n = await ctx.judge_until(
        events_prompt(_quote(text)), parse_events, tries=JUDGE_TRIES
    )
    calls["n"] += n
    return events


async def _entailed(
    ctx: EvalContext,
    events: list[str],
    description: str,
    other: str,
    quirks: bool,
    calls: dict[str, int],
) -> tuple[float, list[str]]:
    """Share of ``events`` the judge says ``description`` entails, and each relationship.
    No events scores 1.0, as released; the release still asks the judge about ``other``
    (the other text) as the one event, an answer that cannot change the score, so that
    call is made only with ``official_quirks``."""
    if not events and not quirks:
        return 1.0, []
    asked = events or [other.replace("\n", " ")]
    rels, _, n = await ctx.judge_until(
        entailment_prompt(asked, description),
        lambda said: parse_entailment(said, len(asked)),
        tries=JUDGE_TRIES,
    )
    calls["n"] += n
    if not events:
        return 1.0, []
    return sum(r == "entailment" for r in rels) / len(events), rels


_COUNTS = ("n_subjects", "n_shots", "n_events")


def _rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    if path.suffix == ".jsonl":
        return [(f"{path}:{n}", row) for n, row in read_jsonl(path)]
    data = read_json(path)
    if isinstance(data, dict):  # {"idx": {...}} or {"data": [...]}
        data = data.get("data") or list(data.values())
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise BenchmarkFileError(f"{path}: expected a list of objects (or JSON lines)")
    return [(f"{path}: item {i}", row) for i, row in enumerate(data)]


def _messages(messages: Any, where: str) -> tuple[str, str, str]:
    """(prompt, reference description, video file) of the messages layout."""
    if not isinstance(messages, list):
        raise BenchmarkFileError(f"{where}: field 'messages' should be a list")
    prompt = response = video_file = ""
    found = False
    for turn in messages:
        parts = turn.get("content") if isinstance(turn, dict) else None
        for part in parts if isinstance(parts, list) else []:
            if not isinstance(part, dict):
                continue
            if turn.get("role") == "assistant":
                found = True
                response += str(part.get("reference") or part.get("text") or "")
            elif part.get("type") == "video" and isinstance(part.get("video"), dict):
                video_file = str(part["video"].get("video_file") or "")
            elif part.get("type") == "text":
                prompt += str(part.get("text") or "")
    if not found:
        raise BenchmarkFileError(f"{where}: messages: missing the assistant's 'reference'")
    return prompt, response, video_file


def _events(value: Any, where: str) -> list[str] | None:
    if isinstance(value, str):  # the Hugging Face metadata keeps lists as strings
        try:
            value = json.loads(value)
        except ValueError:
            with contextlib.suppress(ValueError, SyntaxError):  # refused below
                value = ast.literal_eval(value)
    if value is not None and not (
        isinstance(value, list) and all(isinstance(e, str) for e in value)
    ):
        raise BenchmarkFileError(f"{where}: field 'extra_info.events' should be a string list")
    return value


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None
