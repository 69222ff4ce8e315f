"""Answer extraction edge cases against the released rules (what each rule reads from
"A.", "(B)", "The best answer is C", lower case, no letter, yes/no variants), and the judge
answer parsers' released repairs."""

from __future__ import annotations

import pytest

from diffcap.eval.extract import (
    mvbench_correct,
    mvbench_letter,
    option_letter,
    tempcompass_caption_matching,
    tempcompass_mc,
    tempcompass_yes_no,
    videomme_letter,
)
from diffcap.eval.judges import (
    JudgeAnswerError,
    parse_entailment,
    parse_events,
    parse_vdc_grade,
)


@pytest.mark.parametrize(
    ("answer", "letter"),
    [
        ("A.", "A"),
        ("(B)", "B"),
        ("The best answer is C", "C"),
        ("The correct answer is D.", "D"),
        ("Answer: (C)", "A"),  # released quirk: the capital A of "Answer" comes first
        ("c", ""),  # lower case: the released regex is case-sensitive
        ("none of them", ""),
        ("", ""),
        # more than 10 words and no capital A-D: not answered
        ("i am not sure which option is right here, sorry about that", ""),
        # at most 10 words: the first capital A-D anywhere is taken (released quirk)
        ("Because the dog runs", "B"),
    ],
)
def test_videomme_letter(answer, letter):
    assert videomme_letter(answer) == letter


@pytest.mark.parametrize(
    ("pred", "gt", "correct", "letter"),
    [
        ("A) a cat", "(A) a cat", True, "A"),  # "(" + "A)" = "(a)"
        ("(B) two", "(B) two", True, "B"),  # "((b)" contains "(b)"
        ("b.", "(B) two", True, "B"),  # lower case, dot dropped
        ("C", "(C) left", True, "C"),
        ("A.", "(B) two", False, "A"),
        ("The best answer is C", "(C) left", False, ""),  # first word "the"
        ("", "(A) a cat", False, ""),  # released code would count "(" as right; not here
        ("no letter at all", "(A) a cat", False, ""),
    ],
)
def test_mvbench(pred, gt, correct, letter):
    assert mvbench_correct(pred, gt) is correct
    assert mvbench_letter(pred) == letter


@pytest.mark.parametrize(
    ("pred", "rating"),
    [
        ("B. jumping", 1),  # the whole answer
        ("B", 1),
        ("B.", 1),
        ("B)", 1),
        ("A.", 0),
        ("(B) jumping", None),  # no released rule reads "(B)"
        ("b.", None),  # nor lower case
        ("The best answer is B", None),
    ],
)
def test_tempcompass_multi_choice(pred, rating):
    assert tempcompass_mc(pred, "B. jumping") == rating


@pytest.mark.parametrize(
    ("pred", "answer", "rating"),
    [
        ("yes", "yes", 1),
        ("Yes, it does.", "yes", 1),
        ("YES", "no", 0),
        ("No.", "no", 1),
        ("nope", "no", 1),  # starts with "no" (released rule)
        ("Maybe", "yes", None),
        ("It is yes", "yes", None),
    ],
)
def test_tempcompass_yes_no(pred, answer, rating):
    assert tempcompass_yes_no(pred, answer) == rating


QUESTION = "Which caption matches the video better?\nCaption A: A dog runs\nCaption B: A cat sleeps"


@pytest.mark.parametrize(
    ("pred", "rating"),
    [
        ("Caption A", 1),
        ("Caption A.", 1),
        ("A dog runs", 1),
        ("Caption A: A dog runs", 1),
        ("(A) A dog runs", 1),  # the sentence after ") "
        ("Caption B", 0),
        ("A cat sleeps", 0),
        ("the first one", None),
    ],
)
def test_tempcompass_caption_matching(pred, rating):
    assert tempcompass_caption_matching(pred, QUESTION, "Caption A: A dog runs") == rating


@pytest.mark.parametrize(
    ("text", "letter"),
    [("A.", "A"), ("(b)", "B"), ("The best answer is C", "C"), ("c) left", "C"), ("none", "")],
)
def test_lenient_option_letter(text, letter):
    assert option_letter(text) == letter


def test_judge_parsers_repair_like_the_release():
    assert parse_events('```json\n{"events": ["a", "b"]}\n```') == ["a", "b"]
    assert parse_events("{'events': []}") == []
    with pytest.raises(JudgeAnswerError):
        parse_events("Sure! Here are the events: a, b")
    near = (
        '"events": [{"event": "a", "relationship": "Entailment"}, '
        '{"event": "b", "relationship": "neutral"},]'
    )
    assert parse_entailment(near, 2) == ["entailment", "neutral"]
    glued = '{"events": [{"relationship": "entailment"}{"relationship": "contradiction"}]}'
    assert parse_entailment(glued, 2) == ["entailment", "contradiction"]
    with pytest.raises(JudgeAnswerError, match="rates 1 events, not 2"):
        parse_entailment('{"events": [{"relationship": "entailment"}]}', 2)
    with pytest.raises(JudgeAnswerError, match="unknown relationship"):
        parse_entailment('{"events": [{"relationship": "maybe"}]}', 1)
    assert parse_vdc_grade("{'pred': 'yes', 'score': 4}") == (True, 4.0)
    assert parse_vdc_grade("```python\n{'pred': 'no', 'score': 4.8}\n```") == (False, 4.8)
    with pytest.raises(JudgeAnswerError):
        parse_vdc_grade("yes, 4")
