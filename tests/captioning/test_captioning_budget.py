"""The pieces that make prompts fit: keeping the recent part of a caption, cutting a timeline
into parts at its breaks, segments, and time citations."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from diffcap.captioning.budget import PromptBudget
from diffcap.captioning.calls import Caller, Span
from diffcap.captioning.citations import check_citations, find_citations, parse_clock
from diffcap.captioning.fit import ELLIPSIS, keep_recent
from diffcap.captioning.segments import plan_segments, wants_segments
from diffcap.captioning.tree import leaves, plan_groups, summarize_tree, time_breaks
from diffcap.config import CaptionConfig
from diffcap.errors import ContextTooSmall
from diffcap.models.base import Backend, ModelRequest, ModelResponse
from diffcap.models.context import ContextWindow, EstimateCounter
from diffcap.prompts import load_templates
from diffcap.prompts.render import clock, stamp
from diffcap.timeline import Caption, Usage


class Words:
    """One token per word: easy numbers to reason about."""

    name = "words"

    def count(self, text: str) -> int:
        return len(text.split())


def test_keep_recent_keeps_the_last_whole_sentences():
    text = "The dog sits. It stands up slowly. Then it runs to the lake."
    assert keep_recent(text, 100, Words()) == text
    assert keep_recent(text, 8, Words()) == ELLIPSIS + "Then it runs to the lake."
    assert (
        keep_recent(text, 12, Words())
        == ELLIPSIS + "It stands up slowly. Then it runs to the lake."
    )
    # One long sentence: its last words.
    long = "a " * 50 + "end"
    kept = keep_recent(long, 5, Words())
    assert kept.startswith(ELLIPSIS) and kept.endswith("end") and Words().count(kept) <= 5
    assert keep_recent(text, 0, Words()) == ""


@pytest.mark.parametrize("n", [5, 40, 333])
def test_groups_fit_cover_everything_in_order_and_cut_at_breaks(n):
    costs = [(i * 7) % 11 + 3 for i in range(n)]
    breaks = [0.0] * n
    for i in range(3, n, 4):  # a scene change after every 4th item
        breaks[i] = 5.0
    room = 80
    groups = plan_groups(costs, room, breaks)
    assert groups[0][0] == 0 and groups[-1][1] == n
    assert all(a < b for a, b in groups)
    assert all(b == a2 for (_, b), (a2, _) in itertools.pairwise(groups))
    assert all(sum(costs[a:b]) <= room for a, b in groups)
    total = sum(costs)
    # Hardly more parts than the room needs (cutting at breaks costs a few).
    assert len(groups) <= -(-total // room) * 1.3 + 1
    if len(groups) > 1:  # most cuts fall at a scene change
        at_breaks = sum(breaks[b - 1] > 0 for _, b in groups[:-1])
        assert at_breaks >= (len(groups) - 1) * 0.6


def test_one_item_over_the_room_is_refused():
    with pytest.raises(ValueError):
        plan_groups([10, 200, 10], 100, [0, 0, 0])


def test_segments_are_cut_at_the_largest_visual_breaks():
    n, target = 100, 25
    breaks = [0.01] * (n - 1)
    for i in (22, 47, 78):
        breaks[i] = 0.9
    ranges = plan_segments(breaks, n, target)
    assert [a for a, _ in ranges] == [0, 23, 48, 79]
    assert ranges[-1][1] == n
    assert plan_segments(breaks[:9], 10, 25) == [(0, 10)]
    cfg = CaptionConfig()
    assert not wants_segments(cfg, 200, 120.0)  # a few minutes: the paper's single chain
    assert wants_segments(cfg, 200, 3600.0)
    assert not wants_segments(CaptionConfig(chain="single"), 200, 3600.0)
    assert wants_segments(CaptionConfig(chain="segments"), 200, 60.0)


def test_clock_stamps_and_citations_round_trip():
    assert clock(75.4) == "01:15" and clock(3725) == "1:02:05"
    assert stamp(5, 9) == "00:05–00:09" and stamp(5, 5.5) == "00:05"
    assert parse_clock("1:02:05") == 3725 and parse_clock("00:07.5") == 7.5
    text = "He sits [00:05–00:09], runs [01:00 - 01:10] and [1:00:00–1:00:30], then [09:00]."
    assert [c[1:] for c in find_citations(text)] == [(5, 9), (60, 70), (3600, 3630), (540, 540)]
    cleaned, kept, dropped = check_citations(text, 0, 75)
    assert [c["text"] for c in kept] == ["[00:05–00:09]", "[01:00 - 01:10]"]
    assert dropped == ["[1:00:00–1:00:30]", "[09:00]"]
    assert cleaned == "He sits [00:05–00:09], runs [01:00 - 01:10] and, then."


class Recorder(Backend):
    """Answers every summary request with a citation of its first and last stamp, and one
    citation far outside the range; records prompts."""

    name = "recorder"

    def __init__(self) -> None:
        self.model = "m"
        self.prompts: list[str] = []

    async def agenerate(self, request: ModelRequest) -> ModelResponse:
        self.prompts.append(request.prompt)
        found = find_citations(request.prompt)
        first, last = (found[0][0], found[-1][0]) if found else ("", "")
        text = f"Summary {len(self.prompts)} {first} to {last} and [99:59:00]."
        return ModelResponse(text, "m", Usage(requests=1))


def budget(tokens: int, max_tokens: int = 20) -> PromptBudget:
    return PromptBudget(ContextWindow(tokens, "test"), max_tokens, Words())


def timeline(n: int, step: float = 10.0) -> list[Caption]:
    return [Caption(str(i), f"caption {i} " + "word " * 20, time=i * step) for i in range(n)]


def test_a_timeline_that_fits_is_one_request_without_a_tree():
    backend = Recorder()
    caller = Caller(backend, budget=budget(100_000))
    caps = timeline(10)
    cap, tree = asyncio.run(summarize_tree(caps, caller, load_templates(), span=Span(0, 100, 100)))
    assert tree is None and len(backend.prompts) == 1 and cap.idx == "-1"


def test_a_long_timeline_becomes_a_tree_whose_prompts_fit_and_cite_their_parts():
    backend = Recorder()
    b = budget(700)
    caller = Caller(backend, budget=b)
    caps = timeline(120)
    span = Span(0, 1200, 1200)
    cap, tree = asyncio.run(summarize_tree(caps, caller, load_templates(), span=span))
    assert tree is not None and tree["levels"] >= 2
    assert all(Words().count(p) <= b.room(0) for p in backend.prompts)
    nodes = {n["id"]: n for n in tree["nodes"]}
    root = nodes["-1"]
    assert root["content"] == cap.content and (root["start"], root["end"]) == (0, 1200)
    level1 = [n for n in tree["nodes"] if n["level"] == 1]
    # Level 1 covers every caption once, in order, and tiles the span.
    assert [c for n in level1 for c in n["children"]] == [c.idx for c in caps]
    assert level1[0]["start"] == 0 and level1[-1]["end"] == 1200
    assert all(a["end"] == b["start"] for a, b in itertools.pairwise(level1))
    for node in tree["nodes"]:
        for c in node["citations"]:
            assert node["start"] - 1 <= c["start"] <= c["end"] <= node["end"] + 1
        assert node["dropped_citations"] == ["[99:59:00]"]
        assert "[99:59:00]" not in node["content"]
    # Higher levels cite their children's ranges.
    upper = [n for n in tree["nodes"] if n["level"] > 1]
    assert upper and all(set(n["children"]) <= set(nodes) for n in upper)


def test_a_model_too_small_for_two_answers_says_the_numbers():
    caller = Caller(Recorder(), budget=budget(180, max_tokens=60))
    with pytest.raises(ContextTooSmall) as info:
        asyncio.run(summarize_tree(timeline(50), caller, load_templates(), span=Span(0, 500, 500)))
    assert "180" in str(info.value) and "model.max_tokens" in str(info.value)


def test_time_breaks_and_leaves():
    caps = [Caption(str(i), "x", time=t) for i, t in enumerate([0, 2, 4, 30, 32])]
    scores = time_breaks(caps)
    assert scores.index(max(scores)) == 2
    nodes = leaves(caps, Span(0, 40, 40))
    assert [(n.start, n.end) for n in nodes][-2:] == [(30, 32), (32, 40)]
    assert EstimateCounter().count("") == 0


def test_concurrent_refusals_shrink_the_window_once_and_an_unknown_window_is_not_planned():
    b = budget(100_000)
    planned = b.effective
    assert b.learn(700, planned) and b.effective == 700
    for _ in range(7):  # the other requests planned with 100,000 refused at the same time
        b.learn(700, planned)
        b.learn(None, planned)
    assert b.effective == 700
    assert b.learn(None, 700) and b.effective == 525  # refused again after replanning
    unknown = PromptBudget(ContextWindow(8192, "fallback: unknown model"), 20, Words())
    assert unknown.fits("word " * 50_000)  # sent as it is: nothing said how long it may be
    assert unknown.learn(4096) and unknown.effective == 4096
    assert not unknown.fits("word " * 5000)
