"""Answer extraction: each benchmark's released rule, reimplemented to behave the same.

Each function takes the model's raw answer (and what the rule needs from the question) and
returns what the released scorer would extract or decide. Quirks of the released rules are
kept on purpose (noted below), so numbers stay comparable with published ones.

    videomme_letter("Answer: C")                      # "C"
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
    "tempcompass_caption_rating",
    "tempcompass_mc",
    "tempcompass_yes_no",
    "videomme_letter",
]

# The answer phrases the parser Video-MME's README links today removes (thanku-all/parse_answer
# ``eval_your_results.py``, 2024-06-23; it replaced the deleted ``evaluation/`` script). Two
# commas are missing in that list, so two pairs are joined into one phrase each; kept.
_VIDEOMME_PREFIXES = (
    "The best answer is",
    "The correct answer is",
    "The answer is",
    "The answer",
    "The best option isThe correct option is",
    "Best answer:Best option:",
    "Answer:",
    "Option:",
    "The correct answer",
    "The correct option",
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


def mvbench_correct(pred: str, gt: str, *, official_quirks: bool = False) -> bool:
    """MVBench (Ask-Anything ``mvbench.ipynb``): the reply starts after ``Best option:(`` and
    the released code prepends ``(`` to the first line of the stripped answer; correct when
    its first word (lowercase, dots removed) is inside the ground truth's first word ``(x)``
    or contains it.

    Released quirk kept only with ``official_quirks``: an empty answer becomes ``(``, a
    substring of every option, and counts as correct; diffcap counts it wrong."""
    line = pred.strip().split("\n")[0]
    if not line.strip() and not official_quirks:
        return False
    first = ("(" + line).lower().split(" ")[0]
    gt_first = gt.lower().split(" ")[0]
    return first.replace(".", "") in gt_first or gt_first in first


def mvbench_letter(pred: str) -> str:
    """The option letter the answer starts with (``A``, ``(B)``, ``c.``, ``D)``), upper case;
    ``""`` when its first word is not one letter (for reports, not for scores)."""
    line = pred.strip().split("\n")[0].strip()
    first = line.split(" ")[0] if line else ""
    core = first.strip("().:").strip()
    return core.upper() if len(core) == 1 and core.isalpha() else ""


def _tc_clean(pred: str) -> str:
    """What every TempCompass rule reads: ``</s>`` removed, then stripped (since 2024-06)."""
    return pred.replace("</s>", "").strip()


def tempcompass_mc(pred: str, answer: str) -> int | None:
    """TempCompass multi-choice (``eval_multi-choice.py`` hand-written rules): 1/0 when a rule
    matches, None when none does (the release then asks an LLM, or rates 0 with
    ``--disable_llm``). ``answer`` is like ``"B. dribbling a basketball"``."""
    p = _tc_clean(pred)
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
    low = _tc_clean(pred).lower()
    said = "yes" if low.startswith("yes") else "no" if low.startswith("no") else None
    if said is None:
        return None
    return int(said == answer)


def tempcompass_caption_matching(pred: str, question: str, answer: str) -> int | None:
    """TempCompass caption matching (``eval_caption_matching.py``): the answer is one whole
    option line, one option sentence (optionally after ``x) ``), or one option label with or
    without its word (``Caption A``, ``B``, ``Option 1``, ``2.``; dots ignored); later rules
    win. Correct when the chosen one is the answer's line, label, bare label or sentence."""
    p = _tc_clean(pred)
    options = question.split("\n")[1:]
    labels = [o.split(": ")[0] for o in options]
    bare = [re.sub(r"^(Sentence|Option|Caption) ", "", lab) for lab in labels]
    sentences = [o.split(": ")[1] if ": " in o else "" for o in options]
    chosen = None
    for opt in options:
        if opt == p:
            chosen = opt
    for sent in sentences:
        if sent == p or (") " in p and sent == p.split(") ")[1]):
            chosen = sent
    for label in labels + bare:
        if label in (p, p.replace(".", "")):
            chosen = label
    if chosen is None:
        return None
    head, _, sentence = answer.partition(": ")
    accepted = {answer, answer.split(":")[0], sentence or answer}
    if len(head.split()) > 1:
        accepted.add(head.split()[1])
    return int(chosen in accepted)


def tempcompass_caption_rating(judge_said: str, mc_answer: str) -> int:
    """TempCompass captioning (``eval_captioning.py``): the judge answered the video's
    multi-choice question from the caption; right when the text after ``Answer:`` starts with
    the right option letter (``"B. x"``) and names exactly one of ``A.``-``D.``."""
    said = judge_said
    for line in judge_said.split("\n"):
        if "Answer" in line.strip():
            said = line.strip().replace("Answer:", "").strip()
    n_letters = sum(said.count(f"{c}.") for c in "ABCD")
    return int(said.split(". ")[0] == mc_answer.split(". ")[0] and n_letters == 1)


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
