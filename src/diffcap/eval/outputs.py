"""The files of an eval, rebuilt from its run store at the end of every run.

- ``predictions.jsonl``: one line per scored item, in benchmark order: ``id``, ``video``,
  ``dims``, the model's ``raw`` answer (for caption benchmarks: the caption), the
  ``extracted`` answer or the item's ``score``, ``correct`` where it applies, and the
  ``model`` / ``judge`` that produced it;
- ``scores.json``: ``overall`` and ``by`` dimension with counts, the counts of items (scored,
  failed, pending, without input), what was evaluated (benchmark, data, input, model,
  judge, seed);
- ``<bench>.png``: the headline number per dimension (see :mod:`diffcap.eval.chart`).

    counts, overall, files = write_outputs(store, bench, items, missing, signature, out)
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from diffcap.errors import ConfigError, MissingDependency
from diffcap.eval.base import Benchmark, EvalItem
from diffcap.eval.chart import write_chart
from diffcap.fsutil import atomic_open, atomic_write_text
from diffcap.store import RunStore

log = logging.getLogger(__name__)

__all__ = ["load_predictions", "write_outputs"]


def write_outputs(
    store: RunStore,
    bench: Benchmark,
    items: list[EvalItem],
    missing: list[str],
    signature: dict[str, Any],
    out: Path,
) -> tuple[dict[str, int], dict[str, Any], dict[str, str]]:
    wanted = {it.item_id for it in items}
    preds = [p for p in store.iter_records() if p.get("id") in wanted]
    status = {v["video_id"]: v for v in store.videos() if v["video_id"] in wanted}
    failed = [v for v in status.values() if v["status"] == "failed"]
    counts = {
        "items": len(items),
        "scored": len(preds),
        "failed": len(failed),
        "pending": sum(1 for v in status.values() if v["status"] == "pending"),
        "missing": len(missing),
    }
    scores = {
        **signature,
        "counts": counts,
        **bench.aggregate(preds),
        "failed_items": [
            {"id": v["video_id"], "stage": v["stage"], "reason": v["reason"], "error": v["error"]}
            for v in failed[:100]
        ],
        "missing_items": missing[:100],
    }
    files = {"scores": str(out / "scores.json"), "predictions": str(out / "predictions.jsonl")}
    with atomic_open(out / "predictions.jsonl") as fh:
        for p in preds:
            fh.write(json.dumps(p, ensure_ascii=False) + "\n")
    atomic_write_text(out / "scores.json", json.dumps(scores, indent=2, ensure_ascii=False) + "\n")
    chart = _chart(bench, scores, out)
    if chart is not None:
        files["chart"] = str(chart)
    return counts, scores["overall"], files


def _chart(bench: Benchmark, scores: dict[str, Any], out: Path) -> Path | None:
    try:
        return write_chart(bench, scores, out / f"{bench.name}.png")
    except MissingDependency as exc:
        log.warning("no chart: %s", exc)
        return None


def load_predictions(out: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(scores.json, predictions) of an eval directory, for eval-compare."""
    scores_path, preds_path = out / "scores.json", out / "predictions.jsonl"
    if not scores_path.is_file() or not preds_path.is_file():
        raise ConfigError(
            f"{out}: not an eval directory (no scores.json / predictions.jsonl)",
            hint="pass --out folders of `diffcap eval`",
        )
    scores = json.loads(scores_path.read_text(encoding="utf-8"))
    preds = []
    with preds_path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    preds.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{preds_path}:{n}: not valid JSON ({exc.msg})") from None
    return scores, preds
