"""Answer extraction against the current official rules, in both directions (what each
reads and what it refuses): " B", "A\n", "(A)", "Answer: C. Berries.", "The answer is B",
option text without a letter, "" and bare options, as docs/eval.md states them; and the judge
answer parsers' released repairs."""

from __future__ import annotations

import pytest

from diffcap.eval.extract import (
    mvbench_correct,
    mvbench_letter,
    option_letter,
    tempcompass_caption_matching,
    tempcompass_caption_rating,
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
        # The parser linked today strips "Answer:"/"Option:" first (the deleted one read A).
        ("Answer: (C)", "C"),
        ("Answer: C. Berries.", "C"),
        ("Option: D", "D"),
        ("The correct option B", "B"),
        ("The answer is B", "B"),
        (" B", "B"),
        ("A\n", "A"),
        # Kept quirks of the linked parser: a joined phrase is not removed, so the capital
        # B of "Best" is read; lower case is not read; option text alone is not read.
        ("Best option: C", "B"),
        ("c", ""),  # lower case: the released regex is case-sensitive
        ("berries", ""),
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
        ("   \n ", "(A) a cat", False, ""),
        ("no letter at all", "(A) a cat", False, ""),
        (" B) two", "(B) two", True, "B"),  # stripped first
        ("B\nbecause it is", "(B) two", True, "B"),  # only the first line
        ("Answer: B", "(B) two", False, ""),  # "(answer:" is not "(b)"
        ("two", "(B) two", False, ""),  # option text without its letter
    ],
)
def test_mvbench(pred, gt, correct, letter):
    assert mvbench_correct(pred, gt) is correct
    assert mvbench_letter(pred) == letter


def test_mvbench_official_quirks_count_an_empty_answer_right():
    assert mvbench_correct("", "(A) a cat", official_quirks=True) is True
    assert mvbench_correct("  ", "(C) left", official_quirks=True) is True
    assert mvbench_correct("B", "(C) left", official_quirks=True) is False


@pytest.mark.parametrize(
    ("pred", "rating"),
    [
        ("B. jumping", 1),  # the whole answer
        ("B", 1),
        (" B", 1),  # stripped first, as released since June 2024
        ("B\n", 1),
        (" B. jumping</s>", 1),
        (" A", 0),
        ("", None),  # empty: no rule reads it (judge, or 0)
        ("   ", None),
        ("jumping", None),  # the option text without its letter
        ("Answer: C. Berries.", None),
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
        (" yes", "yes", 1),  # stripped first
        ("\nNo", "yes", 0),
        ("", "yes", None),
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
        # bare options, read since May 2024
        ("A", 1),
        ("A.", 1),
        (" A", 1),
        ("B.", 0),
        ("", None),
        ("Caption C", None),
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


OPTION_QUESTION = (
    "Which description is a more suitable match for the video?\n"
    "Option 1: The man is dribbling a basketball.\nOption 2: A man is dunking a basketball."
)


@pytest.mark.parametrize(
    ("pred", "rating"),
    [("2", 1), ("2.", 1), ("Option 2", 1), ("1", 0), (" Option 1", 0), ("3", None)],
)
def test_tempcompass_caption_matching_numbered_options(pred, rating):
    answer = "Option 2: A man is dunking a basketball."
    assert tempcompass_caption_matching(pred, OPTION_QUESTION, answer) == rating


@pytest.mark.parametrize(
    ("said", "rating"),
    [
        ("Reasoning: it says dunking.\nAnswer: B. dunking a basketball", 1),
        ("Answer: B. dunking", 1),
        ("B. dunking a basketball", 1),  # no Answer line: the whole answer is read
        ("Answer: A. dribbling", 0),
        ("Answer: B. dunking or C. passing", 0),  # two options named
        ("Answer: None of the choices are correct", 0),
        ("Answer: B", 0),  # the release wants "B. ..."
    ],
)
def test_tempcompass_captioning_judge_answer(said, rating):
    assert tempcompass_caption_rating(said, "B. dunking a basketball") == rating
