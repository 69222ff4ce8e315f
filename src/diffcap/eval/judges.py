"""Judge prompts and the parsing of judge answers, as the released scorers do them.

AutoDQ (DREAM-1K, Tarsier's ``evaluation/metrics/evaluate_dream_gpt.py``): one prompt
extracts at most 10 action events from a description; another classifies each event as
entailment / neutral / contradiction against a description. VDCscore (AuroraCap's
``post_eval/process_vdc_result.py``): one prompt answers a question from a caption alone,
another grades that answer against the ground truth as ``{'pred': 'yes'|'no', 'score': 0-5}``.
The prompt texts are the released ones (so a judge sees what it saw in the papers); the
parsers apply the released clean-ups and raise :class:`JudgeAnswerError` on what they cannot
read (the item is then reported as a judge failure, not scored).
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

__all__ = [
    "JudgeAnswerError",
    "entailment_prompt",
    "events_prompt",
    "parse_entailment",
    "parse_events",
    "parse_tempcompass_rating",
    "parse_vdc_grade",
    "vdc_answer_prompts",
    "vdc_grade_prompts",
]


class JudgeAnswerError(ValueError):
    """The judge's answer is not in the format its prompt asked for."""


def events_prompt(caption: str) -> str:
    return (
        "Bellow is a description of a video clip:\n"
        f"Video Description: {caption}\n\n"
        "Extract at most 10 key events from the above video description paragraph. "
        "Requirements\n:"
        "- An event must include an action, motion or movement (NOT STATIC INFORMATION). "
        "DON'T repeat same events.\n"
        "- Every event is represented by a brief sentence within 10 words, with a subject, a "
        "predicate and optionally an object, avoid unnecessary appearance descriptions.\n"
        "- Every event must be atomic, meaning that it cannot be further split into multiple "
        "events.\n"
        "- Scene cuts and camera motions are NOT events.\n"
        "- Substitute pronouns by the nouns they refer to.\n\n"
        "Please generate the response in the form of a Python dictionary string with keys "
        '"events". The value of "events" is a List(str), of which each item is an event. '
        "DO NOT PROVIDE ANY OTHER OUTPUT TEXT OR EXPLANATION. Only provide the Python "
        "dictionary string. "
        'For example, your response should look like this: {"events": [event1, event2, ...]}'
    )


def entailment_prompt(events: list[str], description: str) -> str:
    # The release formats the list with Python's repr ("['a.', 'b.']"); so do we.
    return (
        "Given a video description and a list of events. For each event, classify the "
        "relationship between the video description and the event into three classes: "
        "entailment, neutral, contradiction.\n"
        '- "entailment" means that the video description entails the event.\n'
        '- "contradiction" means that some detail in the video description contradicts with '
        "the event.\n"
        '- "neutral" means that the relationship is neither "entailment" or "contradiction".'
        "\n\n"
        f"Video Description:\n{description}\n\n"
        f"Events: {events}\n"
        "Output a JSON formed as:\n"
        "{\n"
        '  "events": [\n'
        '    {"event": "copy an event here", "relationship": "put class name here",  '
        '"reason": "give your reason here"},\n'
        "    ...\n"
        "  ]\n"
        "}\n\n"
        "DO NOT PROVIDE ANY OTHER OUTPUT TEXT OR EXPLANATION. Only output the JSON. Output:"
    )


def _strip_fence(text: str) -> str:
    text = text.strip()
    for fence in ("```json", "```python"):
        if text.startswith(fence):
            return text.replace(fence, "").replace("```", "").strip()
    return text


def parse_events(text: str) -> list[str]:
    """The ``events`` list of an extraction answer (a Python dict string)."""
    try:
        value = ast.literal_eval(_strip_fence(text))
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise JudgeAnswerError(f"events answer is not a Python dict ({exc})") from None
    events = value.get("events") if isinstance(value, dict) else None
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise JudgeAnswerError("events answer has no list of strings under 'events'")
    return events


def _clean_entailment(text: str) -> str:
    """The release's repairs of near-JSON answers, in its order."""
    s = re.sub(r"\s+", " ", re.sub(r"\n+", "\n", text.strip()))
    s = _strip_fence(s)
    if not s.startswith("{"):
        s = "{" + s
    if not s.endswith("}"):
        s = s + "}"
    s = s.replace("True", "true").replace("False", "false")
    s = s.replace("} {", "}, {").replace("}{", "}, {")
    for a, b in ((",\n}", "\n}"), (", \n}", "\n}"), (", }", "}"), (",}", "}")):
        s = s.replace(a, b)
    for a, b in ((",\n]", "\n]"), (", \n]", "\n]"), (", ]", "]"), (",]", "]")):
        s = s.replace(a, b)
    return s.replace("[Placeholder]", "null").replace("{Events:", "").strip()


def parse_entailment(text: str, n_events: int) -> list[str]:
    """The relationship of each event (``entailment``/``neutral``/``contradiction``)."""
    try:
        data = json.loads(_clean_entailment(text))
    except json.JSONDecodeError as exc:
        raise JudgeAnswerError(f"entailment answer is not JSON ({exc.msg})") from None
    events = data.get("events") if isinstance(data, dict) else None
    if not isinstance(events, list):
        raise JudgeAnswerError("entailment answer has no 'events' list")
    if len(events) != n_events:
        raise JudgeAnswerError(f"entailment answer rates {len(events)} events, not {n_events}")
    out = []
    for e in events:
        rel = str(e.get("relationship", "") if isinstance(e, dict) else "").strip().lower()
        if rel not in ("entailment", "neutral", "contradiction"):
            raise JudgeAnswerError(f"unknown relationship {rel!r}")
        out.append(rel)
    return out


VDC_ANSWER_SYSTEM = (
    "You are an intelligent chatbot designed for providing accurate answers to questions "
    "related to the content based on a detailed description of a video or image."
    "Here's how you can accomplish the task:"
    "------"
    "##INSTRUCTIONS: "
    "- Read the detailed description carefully.\n"
    "- Answer the question only based on the detailed description.\n"
    "- The answer should be a short sentence or phrase.\n"
)

VDC_GRADE_SYSTEM = (
    "You are an intelligent chatbot designed for evaluating the correctness of generative "
    "outputs for question-answer pairs. "
    "Your task is to compare the predicted answer with the correct answer and determine if "
    "they match meaningfully. Here's how you can accomplish the task:"
    "------"
    "##INSTRUCTIONS: "
    "- Focus on the meaningful match between the predicted answer and the correct answer.\n"
    "- Consider synonyms or paraphrases as valid matches.\n"
    "- Evaluate the correctness of the prediction compared to the answer."
)


def vdc_answer_prompts(caption: str, question: str) -> tuple[str, str]:
    """(system, user) of VDCscore's answer-from-the-caption step."""
    user = (
        "Please provide accurate answers to questions related to the content based on a "
        "detailed description of a video or image:\n\n"
        f"detailed description: {caption}, question: {question}"
        "DO NOT PROVIDE ANY OTHER OUTPUT TEXT OR EXPLANATION. Only provide short but "
        "accurate answer."
    )
    return VDC_ANSWER_SYSTEM, user


def vdc_grade_prompts(question: str, answer: str, response: str) -> tuple[str, str]:
    """(system, user) of VDCscore's grading step."""
    user = (
        "Please evaluate the following video-based question-answer pair:\n\n"
        f"Question: {question}\n"
        f"Correct Answer: {answer}\n"
        f"Predicted Answer: {response}\n\n"
        "Provide your evaluation only as a yes/no and score where the score is an integer "
        "value between 0 and 5, with 5 indicating the highest meaningful match. "
        "Please generate the response in the form of a Python dictionary string with keys "
        "'pred' and 'score', where value of 'pred' is  a string of 'yes' or 'no' and value of "
        "'score' is in INTEGER, not STRING."
        "DO NOT PROVIDE ANY OTHER OUTPUT TEXT OR EXPLANATION. Only provide the Python "
        "dictionary string. "
        "For example, your response should look like this: {'pred': 'yes', 'score': 4.8}."
    )
    return VDC_GRADE_SYSTEM, user


def parse_vdc_grade(text: str) -> tuple[bool, float]:
    """(matched, score) of a grading answer ``{'pred': 'yes', 'score': 4}``."""
    try:
        value: Any = ast.literal_eval(_strip_fence(text))
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise JudgeAnswerError(f"grade is not a Python dict ({exc})") from None
    if not isinstance(value, dict) or "pred" not in value or "score" not in value:
        raise JudgeAnswerError("grade has no 'pred' and 'score'")
    try:
        score = float(value["score"])
    except (TypeError, ValueError):
        raise JudgeAnswerError(f"grade score {value['score']!r} is not a number") from None
    return value["pred"] == "yes", score


def parse_tempcompass_rating(text: str) -> int:
    """1 or 0 as TempCompass's release reads its judge's "Correct" / "Incorrect" (its
    prompts are read from the user's copy: :mod:`diffcap.eval.tempcompass_data`); neither
    is a JudgeAnswerError (the release asks again, then rates 0)."""
    t = text.strip()
    if t.startswith("Correct"):
        return 1
    if t.startswith("Incorrect"):
        return 0
    if "Correct" in t and "Incorrect" not in t:
        return 1
    if "Incorrect" in t:
        return 0
    raise JudgeAnswerError("rating says neither Correct nor Incorrect")
