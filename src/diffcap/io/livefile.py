"""The live records file: one JSON object a line, appended the moment it exists, and the
state a restarted process reads back from it.

Lines (``type``): ``start`` (a process began), ``caption`` (a keyframe's caption: stream
time ``time``, wall clock ``wall`` in ISO 8601 UTC with ``wall_source``, ``kind`` first or
differential, ``keyframe`` image path, ``delay_s`` from the frame's arrival to the line),
``skipped`` (a keyframe dropped by the queue), ``gap`` (nothing seen from ``start`` to
``end``), ``summary`` (a rolling summary of ``[start, end]``; ``final`` for the whole run),
``end`` (the process stopped: ``reason``). Each line is flushed and fsynced before the next
step, so a SIGKILL loses at most the line being written (a torn last line is dropped on
restart).

    log = EventLog(path)                 # truncates a torn last line
    state = LiveState.read(path)
    log.write({"type": "caption", ...})
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from diffcap.timeline import Caption, Keyframe


def iso(unix: float) -> str:
    """Unix seconds -> ISO 8601 UTC with milliseconds."""
    return datetime.fromtimestamp(unix, timezone.utc).isoformat(timespec="milliseconds")


def unix(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The complete lines of ``path`` (a torn last line, from a kill mid-write, is left out)."""
    if not path.is_file():
        return []
    out = []
    with path.open("rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break
            try:
                out.append(json.loads(raw))
            except ValueError:
                break
    return out


class EventLog:
    """Appends lines to the live records file, durably (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        _drop_torn_tail(path)
        self._fh = path.open("a", encoding="utf-8")

    def write(self, obj: dict[str, Any]) -> None:
        self._fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


def _drop_torn_tail(path: Path) -> None:
    if not path.is_file():
        return
    with path.open("rb+") as fh:
        data = fh.read()
        cut = data.rfind(b"\n") + 1
        if cut < len(data):
            fh.truncate(cut)


@dataclass
class LiveState:
    """What earlier processes of a run wrote (empty for a new run)."""

    source: str | None = None
    captions: list[Caption] = field(default_factory=list)
    keyframes: list[Keyframe] = field(default_factory=list)
    #: (stream time, unix time) of the last thing seen: where a restart picks up.
    last: tuple[float, float] | None = None
    #: End (stream time) of the last rolling summary.
    summarized_to: float = 0.0
    summaries: list[Caption] = field(default_factory=list)
    gaps: list[tuple[float, float]] = field(default_factory=list)
    skipped: int = 0
    starts: int = 0
    ended: str | None = None

    @classmethod
    def read(cls, path: Path) -> LiveState:
        st = cls()
        for line in read_lines(path):
            st.add(line)
        return st

    def add(self, line: dict[str, Any]) -> None:
        kind = line.get("type")
        if kind == "start":
            self.starts += 1
            self.source = self.source or line.get("source")
            self.ended = None
        elif kind == "caption":
            t = float(line["time"])
            self.captions.append(Caption(str(line["idx"]), line["content"], time=t))
            self.keyframes.append(
                Keyframe(idx=int(line["idx"]), time=t, pts=0, file=line.get("keyframe"))
            )
            self.last = (t, unix(line["wall"]))
        elif kind == "gap":
            self.gaps.append((float(line["start"]), float(line["end"])))
        elif kind == "skipped":
            self.skipped += 1
        elif kind == "summary" and not line.get("final"):
            self.summarized_to = max(self.summarized_to, float(line["end"]))
            self.summaries.append(
                Caption("-1", line["content"], start=float(line["start"]), end=float(line["end"]))
            )
        elif kind == "end":
            self.ended = line.get("reason")
            if "time" in line and "wall" in line:
                self.last = (float(line["time"]), unix(line["wall"]))

    @property
    def next_idx(self) -> int:
        return len(self.captions)


def is_live_file(path: Path) -> bool:
    """Whether ``path`` is a live records file (its first line is a live ``start``)."""
    try:
        with path.open("rb") as fh:
            first = fh.readline(65536)
        return bool(json.loads(first).get("live")) and b'"type": "start"' in first
    except (OSError, ValueError, AttributeError):
        return False


def record_from_lines(lines: list[dict[str, Any]], offset: int = 0) -> dict[str, Any]:
    """A live records file as one diffcap record (JSON), for the viewer and exports: the
    captions as the timeline, the last final summary as idx ``"-1"``, rolling summaries as
    clips, gaps and skipped keyframes in ``live``. ``offset``: bytes read (the viewer's
    server-sent events go on from there)."""
    caps = [x for x in lines if x.get("type") == "caption"]
    summaries = [x for x in lines if x.get("type") == "summary"]
    final = [s for s in summaries if s.get("final")]
    start = next((x for x in lines if x.get("type") == "start"), {})
    captions = [{"idx": c["idx"], "time": c["time"], "content": c["content"]} for c in caps]
    if final:
        captions.append({"idx": "-1", "start": 0.0, "end": final[-1]["end"],
                         "content": final[-1]["content"]})  # fmt: skip
    return {
        "video_id": "live",
        "video_path": str(start.get("source", "")),
        "duration": max((c["time"] for c in caps), default=0.0),
        "mode": "slide",
        "keyframes": [
            {"idx": int(c["idx"]), "time": c["time"], "file": c.get("keyframe")} for c in caps
        ],
        "captions": captions,
        "clips": [
            {k: s[k] for k in ("start", "end", "content")} for s in summaries if not s.get("final")
        ],
        "provenance": {"live": True, "live_offset": offset, "model": start.get("model", "")},
        "live": {
            "gaps": [x for x in lines if x.get("type") == "gap"],
            "skipped": sum(1 for x in lines if x.get("type") == "skipped"),
        },
    }


def read_record(path: Path) -> dict[str, Any]:
    """:func:`record_from_lines` of a live records file, with the byte offset it read to."""
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    lines = []
    for raw in data[:cut].splitlines():
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if isinstance(obj, dict):
            lines.append(obj)
    return record_from_lines(lines, cut)
