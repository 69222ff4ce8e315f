"""Video-MME (Fu et al., arXiv 2405.21075): 2,700 four-option questions on 900 videos.

Official files, any of:

- the Hugging Face release's Parquet (``lmms-lab/Video-MME``: ``videomme/test-*.parquet``)
  or the same rows as JSONL: ``video_id, duration, domain, sub_category, videoID,
  question_id, task_type, question, options ["A. ...", ...], answer "A"``;
- the grouped JSON of the official ``evaluation/output_test_template.json``: a list of
  videos with ``video_id, duration, domain, sub_category, questions: [{question_id,
  task_type, question, options, answer}]``.

The video file is ``<videoID>.mp4`` (or ``<video_id>``) under ``--videos``.

Followed: the README of ``MME-Benchmarks/Video-MME`` (06c2315, 2025-12-08) for the prompt,
and the parser it links, ``thanku-all/parse_answer`` ``eval_your_results.py`` (afd52cf,
2024-06-23; the repository's own ``eval_your_results.py`` was deleted in June 2024). The
headline ``accuracy`` is the release's: correct / answered (a letter was extracted), overall,
per duration and per category; ``accuracy_all`` (correct / every question) is diffcap's.

Subtitles (``--subtitles DIR`` of ``<videoID>.srt``, Video-MME's ``subtitle.zip``): the README's
"w/ subs" prompt, with only the subtitle lines shown while a sampled frame is on screen (its
rule); a video without a subtitle file gets "No subtitles available" (lmms-eval's line).
"""

from __future__ import annotations

import re
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
from diffcap.eval.scoring import group_by, tally

PROMPT = (
    "Select the best answer to the following multiple-choice question based on the video. "
    "Respond with only the letter (A, B, C, or D) of the correct option.\n"
    "{question}\n{options}\nThe best answer is:"
)
SUBTITLES_HEADER = "This video's subtitles are listed below:\n{subtitles}\n"
NO_SUBTITLES = "No subtitles available"
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
        out: dict[str, Any] = {}
        if self.settings.subtitles:
            lines = subtitle_lines(Path(self.settings.subtitles), item.video, ctx.times)
            prompt = SUBTITLES_HEADER.format(subtitles="\n".join(lines) or NO_SUBTITLES) + prompt
            out["subtitle_lines"] = len(lines)
        raw = await ctx.ask(prompt, max_tokens=64)
        letter = videomme_letter(raw)
        return {
            "raw": raw,
            "extracted": letter,
            "answer": item.answer,
            "correct": letter == item.answer,
            "answered": letter != "",
            **out,
        }

    def aggregate(self, preds: list[dict[str, Any]]) -> dict[str, Any]:
        out = tally(preds, DIMS, _answered_accuracy)
        # The release's per-duration tables: categories, sub-categories, task types.
        out["by_duration"] = {
            d: tally(sub, DIMS[1:], _answered_accuracy)["by"]
            for d, sub in group_by(preds, "duration").items()
        }
        return out

    def statistic(self, preds: list[dict[str, Any]]) -> float | None:
        """The headline: correct / answered."""
        answered = [p for p in preds if p.get("answered", True)]
        return sum(1 for p in answered if p.get("correct")) / len(answered) if answered else None


def _answered_accuracy(preds: list[dict[str, Any]]) -> dict[str, Any]:
    """The release's numbers (correct / answered) first, then diffcap's (correct / all)."""
    answered = [p for p in preds if p.get("answered", True)]
    correct = sum(1 for p in answered if p.get("correct"))
    return {
        "accuracy": correct / len(answered) if answered else None,
        "correct": correct,
        "answered": len(answered),
        "count": len(preds),
        "accuracy_all": correct / len(preds) if preds else None,
    }


_SRT_TIME = re.compile(r"(\d+):(\d+):(\d+)[,.](\d+)")
_TAG = re.compile(r"<[^>]+>")


def read_srt(path: Path) -> list[tuple[float, float, str]]:
    """(start s, end s, text) of each entry of an SRT file, markup (``<font ...>``) removed."""
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise BenchmarkFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    out = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        lines = [ln for ln in block.strip().split("\n") if ln.strip()]
        timing = next((i for i, ln in enumerate(lines) if "-->" in ln), None)
        if timing is None:
            continue
        ends = [m for t in lines[timing].split("-->") if (m := _SRT_TIME.search(t))]
        if len(ends) != 2:
            continue
        start, end = _seconds(ends[0]), _seconds(ends[1])
        words = " ".join(_TAG.sub("", ln).strip() for ln in lines[timing + 1 :]).strip()
        if words:
            out.append((start, end, words))
    return out


def _seconds(m: re.Match[str]) -> float:
    h, mi, s, ms = (int(g) for g in m.groups())
    return h * 3600 + mi * 60 + s + ms / 10 ** len(m.group(4))


def subtitle_lines(folder: Path, video: str, times: tuple[float, ...] | None) -> list[str]:
    """The subtitle lines shown at the sampled frames' ``times`` (each once, in time order);
    every line when the times are not known (caption input)."""
    path = folder / f"{video}.srt"
    if not path.is_file():
        return []
    entries = read_srt(path)
    if times is None:
        return [text for _, _, text in entries]
    return [text for start, end, text in entries if any(start <= t < end for t in times)]


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
