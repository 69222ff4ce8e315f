"""Answer extraction: each benchmark's released rule, reimplemented to behave the same.

Each function takes the model's raw answer (and what the rule needs from the question) and
returns what the released scorer would extract or decide. Quirks of the released rules are
kept on purpose (noted below), so numbers stay comparable with published ones.

    videomme_letter("The best answer is C.")         # "C"
    mvbench_correct("B) a dog", "(B) a dog")          # True
    tempcompass_mc("(B) dribbling", "B. dribbling")   # None: no rule matched (rated 0)
"""

from __future__ import annotations

import re

__all__ = [
    "mvbench_correct",
    "mvbench_letter",
    "option_letter",
    "tempcompass_caption_matching",
    "tempcompass_mc",
    "tempcompass_yes_no",
    "videomme_letter",
]

# Video-MME's evaluation/eval_your_results.py strips these phrases. Two commas are missing in
# the released list, so two pairs are joined into one phrase each; kept as released.
_VIDEOMME_PREFIXES = (
    "The best answer is",
    "The correct answer is",
    "The answer is",
    "The answer",
    "The best option isThe correct option is",
    "Best answer:Best option:",
)


def videomme_letter(response: str) -> str:
    """Video-MME: the first capital A-D left after removing the answer phrases; ``""`` (not
    answered) when none, or when more than 10 words remain and none is a capital A-D."""
    s = response.strip()
    for prefix in _VIDEOMME_PREFIXES:
        s = s.replace(prefix, "")
    found = re.search(r"[ABCD]", s)
    if len(s.split()) > 10 and found is None:
        return ""
    return found.group(0) if found else ""


def mvbench_correct(pred: str, gt: str) -> bool:
    """MVBench (Ask-Anything ``mvbench.ipynb``): the prompt ends with ``Best option:(`` and the
    released code prepends ``(`` to the first line of the answer; correct when the first word
    (lowercase, dots removed) is inside the ground truth's first word ``(x)`` or contains it.

    Released quirk *not* kept: an empty answer becomes ``(``, a substring of every option,
    and would count as correct; here an empty answer is wrong (and not answered)."""
    line = pred.strip().split("\n")[0].strip()
    if not line:
        return False
    first = ("(" + line).lower().split(" ")[0]
    gt_first = gt.lower().split(" ")[0]
    return first.replace(".", "") in gt_first or gt_first in first


def mvbench_letter(pred: str) -> str:
    """The option letter the answer starts with (``A``, ``(B)``, ``c.``, ``D)``), upper case;
    ``""`` when its first word is not one letter: what "answered" means for the
    answered-only accuracy (lmms-eval divides by answered items, not all)."""
    line = pred.strip().split("\n")[0].strip()
    first = line.split(" ")[0] if line else ""
    core = first.strip("().:").strip()
    return core.upper() if len(core) == 1 and core.isalpha() else ""


def tempcompass_mc(pred: str, answer: str) -> int | None:
    """TempCompass multi-choice (``eval_multi-choice.py`` hand-written rules): 1/0 when a rule
    matches, None when none does (the release then asks an LLM, or rates 0 with
    ``--disable_llm``). ``answer`` is like ``"B. dribbling a basketball"``."""
    p = pred.replace("</s>", "")
    if p == answer:
        return 1
    if p in ("A", "B", "C", "D"):
        return int(p == answer[0])
    if any(p.startswith(f"{c}.") for c in "ABCD"):
        return int(p.split(".")[0] == answer[0])
    if any(p.startswith(f"{c})") for c in "ABCD"):
        return int(p.split(")")[0] == answer[0])
    return None


def tempcompass_yes_no(pred: str, answer: str) -> int | None:
    """TempCompass yes/no: the answer starts with yes or no (any case), else None."""
    low = pred.replace("</s>", "").lower()
    said = "yes" if low.startswith("yes") else "no" if low.startswith("no") else None
    if said is None:
        return None
    return int(said == answer)


def tempcompass_caption_matching(pred: str, question: str, answer: str) -> int | None:
    """TempCompass caption matching (``eval_caption_matching.py``): the answer is one whole
    option line, one option sentence (optionally after ``x) ``), or one option label
    (``Caption A``, ``Sentence B``, ``Option 1``; a trailing dot allowed); later rules win."""
    p = pred.replace("</s>", "")
    options = question.split("\n")[1:]
    labels = [o.split(": ")[0] for o in options]
    sentences = [o.split(": ")[1] if ": " in o else "" for o in options]
    chosen = None
    for opt in options:
        if opt == p:
            chosen = opt
    for sent in sentences:
        if sent == p or (") " in p and sent == p.split(") ")[1]):
            chosen = sent
    for label in labels:
        if label in (p, p.replace(".", "")):
            chosen = label
    if chosen is None:
        return None
    parts = answer.split(": ")
    return int(chosen in (answer, answer.split(":")[0], parts[1] if len(parts) > 1 else answer))


def option_letter(text: str, letters: str = "ABCDE") -> str:
    """A lenient letter reader for reports (not used for scores): ``"A."``, ``"(b)"``, ``"The
    best answer is C"`` -> the letter; ``""`` when there is none."""
    s = text.strip()
    m = re.match(rf"^\(?([{letters}{letters.lower()}])\)?(?:[.:)\s]|$)", s)
    if m:
        return m.group(1).upper()
    m = re.search(rf"(?:answer|option) is:?\s*\(?([{letters}])\b", s, re.IGNORECASE)
    if m:
        return m.group(1).upper()
    return ""
