"""Chapters from the summary tree: WebVTT chapters and the ``00:00 Title`` list.

``diffcap export RUN --format chapters --out DIR`` writes, for each record,
``DIR/<video_id>.vtt`` (a WebVTT chapters track: ``<track kind="chapters">``) and
``DIR/<video_id>.txt`` (the list a video site's description takes, one chapter a line)::

    WEBVTT                                  00:00 A man walks to a red car
                                            05:12 The car drives off at dusk
    1                                       1:02:40 Rain on the windscreen
    00:00:00.000 --> 00:05:12.500
    A man walks to a red car
    ...

The rules (docs/export.md):

* A record with a ``summary_tree`` gets one chapter per first-level node (level 1), in time
  order. The first chapter starts at 00:00 (the first node is extended back to 0); each
  chapter ends where the next one starts (chapters never overlap and leave no gap), and the
  last ends at its node's end or the video's end, whichever is later. A node that starts less
  than 1 s after the previous chapter starts is folded into that chapter.
* A record without a tree (a short video) gets one chapter, 0 to the video's end, titled from
  its summary; a record without a summary is skipped (counted in the summary line).
* A title is the node's (or summary's) first sentence (up to the first ``.``, ``!`` or ``?``
  followed by a space or the end; a final ``.`` dropped) with its citations (``[12:05]``,
  ``[12:05–14:30]``, ``[1:02:05-1:04:00]``) removed and whitespace collapsed, cut at a word
  boundary to at most 60 characters (``…`` marks a cut). An empty title becomes ``Chapter N``.
  ``-->`` (which would end a WebVTT cue's text) is written as ``→``.
* The list's times are whole seconds, rounded down: ``mm:ss``, ``h:mm:ss`` from an hour on.
* File names are the video id when it is made of ``A-Z a-z 0-9 . _ -`` only (and does not
  start with a dot); any other id is made safe (other characters become ``_``) and gets 8 hex
  digits of its hash, so no id can name a path outside DIR or collide with another.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diffcap.errors import ConfigError
from diffcap.export.base import ExportOptions, ExportResult, progress_bar
from diffcap.export.records import RecordSource
from diffcap.fsutil import atomic_write_text
from diffcap.timeline import VideoRecord, format_clock

logger = logging.getLogger(__name__)

__all__ = [
    "Chapter",
    "chapter_file_stem",
    "chapter_title",
    "chapters_list",
    "chapters_vtt",
    "record_chapters",
    "write_chapters",
]

TITLE_MAX = 60
MIN_CHAPTER = 1.0  # seconds: a shorter chapter would repeat its neighbour's list time
_CLOCK = r"\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?"
CITATION = re.compile(rf"\[\s*{_CLOCK}(?:\s*[–—-]\s*{_CLOCK})?\s*\]")
_SENTENCE = re.compile(r".+?[.!?](?=\s|$)")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Chapter:
    start: float
    end: float
    title: str


def chapter_title(content: str, citations: Sequence[str] = (), limit: int = TITLE_MAX) -> str:
    """The title rule above: first sentence, citations out, at most ``limit`` characters."""
    text = content
    for cited in citations:  # as the record wrote them, even in a format CITATION misses
        text = text.replace(cited, " ")
    text = " ".join(CITATION.sub(" ", text).split())
    text = re.sub(r"\(\s*\)", "", text)  # "(" + citation + ")" leaves "()"
    text = re.sub(r"\s+([,.;:!?)])", r"\1", text)  # "walks [00:12]." -> "walks."
    text = " ".join(text.lstrip(",;:–—- ").split())
    m = _SENTENCE.match(text)
    title = (m.group() if m else text).removesuffix(".").strip().replace("-->", "→")
    if len(title) <= limit:
        return title
    cut = title[: limit - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:–—-") + "…"


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and value >= 0 else None


def _level_one(tree: Any) -> list[tuple[float, float, str, list[str]]]:
    """(start, end, content, citation texts) of the tree's usable level-1 nodes, by time."""
    nodes = tree.get("nodes") if isinstance(tree, dict) else None
    out = []
    for n in nodes if isinstance(nodes, list) else []:
        if not isinstance(n, dict) or n.get("level") != 1:
            continue
        start, end = _seconds(n.get("start")), _seconds(n.get("end"))
        if start is None or end is None:
            continue
        cites = n.get("citations")
        content = n.get("content")
        texts = [
            c["text"]
            for c in (cites if isinstance(cites, list) else [])
            if isinstance(c, dict) and isinstance(c.get("text"), str)
        ]
        out.append((start, max(start, end), content if isinstance(content, str) else "", texts))
    return sorted(out, key=lambda n: (n[0], n[1]))


def _tree_chapters(
    nodes: list[tuple[float, float, str, list[str]]], duration: float
) -> list[Chapter]:
    """Level-1 nodes (by time) -> chapters that tile 0..the end, at least MIN_CHAPTER apart."""
    kept: list[tuple[float, float, str, list[str]]] = []
    starts: list[float] = []
    for node in nodes:
        if not kept or node[0] - starts[-1] >= MIN_CHAPTER:  # else folded into the last one
            kept.append(node)
            starts.append(node[0] if starts else 0.0)
    ends = [*starts[1:], max(duration, *(n[1] for n in nodes))]
    return [
        Chapter(s, e, chapter_title(n[2], n[3]) or f"Chapter {i + 1}")
        for i, (s, e, n) in enumerate(zip(starts, ends, kept, strict=True))
    ]


def summary_tree(rec: VideoRecord) -> Any:
    """The record's ``summary_tree`` as its JSON has it (None for short videos)."""
    tree = getattr(rec, "summary_tree", None)
    if tree is None:
        tree = rec.extra.get("summary_tree")
    to_json = getattr(tree, "to_json", None)
    return to_json() if callable(to_json) else tree


def record_chapters(rec: VideoRecord) -> tuple[list[Chapter], bool]:
    """The record's chapters and whether they came from its tree ([] without a summary)."""
    nodes = _level_one(summary_tree(rec))
    if nodes:
        return _tree_chapters(nodes, rec.duration), True
    summary = rec.summary
    if summary is None:
        return [], False
    end = max(rec.duration, summary.end or 0.0, *(k.time for k in rec.keyframes))
    return [Chapter(0.0, end, chapter_title(summary.content) or "Chapter 1")], False


def _vtt_time(t: float) -> str:
    ms = round(t * 1000)
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def chapters_vtt(chapters: Sequence[Chapter]) -> str:
    """A WebVTT chapters file: the header, then numbered cues, each with its title line."""
    cues = [
        f"{i}\n{_vtt_time(c.start)} --> {_vtt_time(c.end)}\n{c.title}\n"
        for i, c in enumerate(chapters, 1)
    ]
    return "WEBVTT\n\n" + "\n".join(cues)


def chapters_list(chapters: Sequence[Chapter]) -> str:
    """``00:00 Title`` lines (``h:mm:ss`` past an hour), as video sites read chapters."""
    return "".join(f"{format_clock(c.start)} {c.title}\n" for c in chapters)


def chapter_file_stem(video_id: str) -> str:
    """The file name rule above: the id itself when it is safe, else a safe form + hash."""
    stem = _UNSAFE.sub("_", video_id).lstrip(".")[:100]
    if stem == video_id and stem:
        return stem
    digest = hashlib.sha256(video_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{stem.strip('._') or 'video'}-{digest}"


def _out_dir(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise ConfigError(
            f"{out} is a file; --format chapters writes a folder of .vtt and .txt files",
            hint="pass a folder (new or existing) as --out",
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_chapters(source: RecordSource, out: Path, opts: ExportOptions) -> ExportResult:
    """One ``.vtt`` and one ``.txt`` per record with a summary, in the folder ``out``."""
    result = ExportResult("chapters", out)
    folder = _out_dir(out)
    written: dict[str, str] = {}  # file stem -> video id
    counts = {"chapters": 0, "from_tree": 0, "from_summary": 0}
    with progress_bar(opts, "chapters") as bar:
        for rec in source:
            result.records += 1
            bar.update()
            chapters, from_tree = record_chapters(rec)
            if not chapters:
                result.skip("without a summary")
                continue
            stem = chapter_file_stem(rec.video_id)
            if stem in written:
                logger.warning("video '%s' appears twice; the later record wins", rec.video_id)
                result.skip("repeated video id")
            else:
                result.items += 1
            written[stem] = rec.video_id
            atomic_write_text(folder / f"{stem}.vtt", chapters_vtt(chapters))
            atomic_write_text(folder / f"{stem}.txt", chapters_list(chapters))
            counts["chapters"] += len(chapters)
            counts["from_tree" if from_tree else "from_summary"] += 1
    result.extra.update(counts)
    result.notes.append(
        f"{counts['chapters']} chapters ({counts['from_tree']} videos from their summary tree, "
        f"{counts['from_summary']} one chapter from the summary)"
    )
    return result
