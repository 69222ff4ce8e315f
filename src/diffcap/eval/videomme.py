"""Video-MME (Fu et al., arXiv 2405.21075): 2,700 four-option questions on 900 videos.

Official files, any of:

- the Hugging Face release's Parquet (``lmms-lab/Video-MME``: ``videomme/test-*.parquet``)
  or the same rows as JSONL: ``video_id, duration, domain, sub_category, videoID,
  question_id, task_type, question, options ["A. ...", ...], answer "A"``;
- the grouped JSON of the official ``evaluation/output_test_template.json``: a list of
  videos with ``video_id, duration, domain, sub_category, questions: [{question_id,
  task_type, question, options, answer}]``.

The video file is ``<videoID>.mp4`` (or ``<video_id>``) under ``--videos``. The prompt is the
README's (without subtitles); scoring is ``eval_your_results.py``'s letter extraction. Like
the released script, ``accuracy_answered`` counts only answers a letter was found in;
``accuracy`` counts every question.
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
    read_json,
    read_jsonl,
    require_field,
)
from diffcap.eval.extract import videomme_letter
from diffcap.eval.scoring import tally

PROMPT = (
    "Select the best answer to the following multiple-choice question based on the video. "
    "Respond with only the letter (A, B, C, or D) of the correct option.\n"
    "{question}\n{options}\nThe best answer is:"
)
DIMS = ["duration", "domain", "sub_category", "task_type"]


class VideoMME(Benchmark):
    name = "videomme"
    chart_dim = "duration"

    def load(self, path: Path) -> list[EvalItem]:
        need_path(path, "Video-MME file")
        if path.is_dir():
            found = sorted(path.rglob("*.parquet"))
            if not found:
                raise BenchmarkFileError(f"{path}: no .parquet file (Video-MME's videomme/)")
            path = found[0]
        if path.suffix == ".parquet":
            rows = [(f"{path}: row {i + 1}", r) for i, r in enumerate(_parquet_rows(path))]
        elif path.suffix == ".jsonl":
            rows = [(f"{path}:{n}", r) for n, r in read_jsonl(path)]
        else:
            rows = _grouped(path)
        return [self._item(where, row) for where, row in rows]

    def _item(self, where: str, row: dict[str, Any]) -> EvalItem:
        qid = str(require_field(row, "question_id", where, (str, int)))
        options = require_field(row, "options", where, list)
        answer = require_field(row, "answer", where)
        video = str(row.get("videoID") or require_field(row, "video_id", where, (str, int)))
        return EvalItem(
            item_id=qid,
            video=video,
            question=require_field(row, "question", where),
            answer=answer.strip(),
            dims={d: str(row[d]) for d in DIMS if row.get(d) is not None},
            data={"options": [str(o) for o in options]},
            where=where,
        )

    async def evaluate(self, item: EvalItem, ctx: EvalContext) -> dict[str, Any]:
        prompt = PROMPT.format(question=item.question, options="\n".join(item.data["options"]))
        raw = await ctx.ask(prompt, max_tokens=64)
        letter = videomme_letter(raw)
        return {
            "raw": raw,
            "extracted": letter,
            "answer": item.answer,
            "correct": letter == item.answer,
            "answered": letter != "",
        }

    def aggregate(self, preds: list[dict[str, Any]]) -> dict[str, Any]:
        return tally(preds, DIMS)


def _parquet_rows(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise BenchmarkFileError(f"{path}: not a readable Parquet file ({exc})") from None
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def _grouped(path: Path) -> list[tuple[str, dict[str, Any]]]:
    data = read_json(path)
    if not isinstance(data, list):
        raise BenchmarkFileError(f"{path}: expected a JSON list of videos")
    out = []
    for i, video in enumerate(data):
        where = f"{path}: video {i}"
        questions = require_field(video, "questions", where, list)
        shared = {k: v for k, v in video.items() if k != "questions"}
        for j, q in enumerate(questions):
            if not isinstance(q, dict):
                raise BenchmarkFileError(f"{where}, question {j}: expected an object")
            out.append((f"{where}, question {j}", {**shared, **q}))
    return out
