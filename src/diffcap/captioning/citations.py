"""Time citations in summaries: ``[12:05]``, ``[12:05–14:30]``, ``[1:02:05 - 1:04:00]``.

A summary node of the tree asks the model to cite when each event happens. Citations are
parsed and checked against the node's range ``[start, end]`` (its children's span, with
:data:`TOLERANCE_S` for the whole-second clock): a citation inside it is kept and recorded
with its times; one outside it (a model's invention) is removed from the text and recorded
as dropped, so no reader is sent to a wrong moment.

    text, cited, dropped = check_citations("He sits [00:05–00:09], then [09:00].", 0, 60)
    text      # "He sits [00:05–00:09], then."
    cited     # [{"text": "[00:05–00:09]", "start": 5.0, "end": 9.0}]
    dropped   # ["[09:00]"]
"""

from __future__ import annotations

import re
from typing import Any

#: Seconds a citation may lie outside its node's range (the clock shows whole seconds).
TOLERANCE_S = 1.0

_TIME = r"(?:\d+:)?\d+:\d{2}(?:\.\d+)?"
CITATION = re.compile(rf"\[\s*({_TIME})\s*(?:(?:–|—|-|to)\s*({_TIME})\s*)?\]")
#: A citation with the one space before it (removed together when it is dropped).
_SPACED = re.compile(rf"[ \t]?{CITATION.pattern}")


def parse_clock(text: str) -> float:
    """``'01:15'`` -> 75.0; ``'1:02:05'`` -> 3725.0; ``'00:07.5'`` -> 7.5."""
    seconds = 0.0
    for part in text.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def find_citations(text: str) -> list[tuple[str, float, float]]:
    """(citation text, start, end) of every citation in ``text``, in order."""
    out = []
    for m in CITATION.finditer(text):
        start = parse_clock(m.group(1))
        end = parse_clock(m.group(2)) if m.group(2) else start
        out.append((m.group(0), min(start, end), max(start, end)))
    return out


def check_citations(
    text: str, start: float, end: float
) -> tuple[str, list[dict[str, Any]], list[str]]:
    """(text without out-of-range citations, kept citations, dropped citation texts)."""
    kept: list[dict[str, Any]] = []
    dropped: list[str] = []
    lo, hi = start - TOLERANCE_S, end + TOLERANCE_S

    def judge(m: re.Match[str]) -> str:
        a = parse_clock(m.group(1))
        b = parse_clock(m.group(2)) if m.group(2) else a
        a, b = min(a, b), max(a, b)
        cited = m.group(0).lstrip(" \t")
        if lo <= a and b <= hi:
            kept.append({"text": cited, "start": a, "end": b})
            return m.group(0)
        dropped.append(cited)
        return ""

    return _SPACED.sub(judge, text), kept, dropped
