"""Summaries of any length: one request when the timeline fits, else a tree.

When the (time, caption) lines of a video do not fit one summary request, consecutive
captions are grouped into parts, each part is summarised (``segment_summary``), and the
parts' summaries are summarised again (``merge_summary``), level by level, until one request
holds them all: the root, the video's summary (idx ``"-1"``). A part holds as many items as
the prompt budget allows (the fan-in comes from the budget, level by level); parts are cut at
the largest breaks (visual change or time gap between neighbouring keyframes) within a slack
window around an even split, so a part rarely ends mid-scene. Every request of a level is
sent at once (under the run's concurrency limit). A part that the server still refuses as
over the context makes the level be planned again with a smaller window, at most
:data:`MAX_REPLANS` times.

Every node asks for time citations (``[12:05–14:30]``); they are parsed and checked against
the node's range (:mod:`diffcap.captioning.citations`). The record keeps every node (see
:func:`tree_json`).

    caption, tree = await summarize_tree(captions, caller, templates, span=span)
    tree["levels"], [n["id"] for n in tree["nodes"]]     # 2, ["1.0", "1.1", "-1"]
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from diffcap.captioning.calls import Caller, Span
from diffcap.captioning.citations import check_citations
from diffcap.errors import ContextExceeded
from diffcap.prompts.render import clock, timeline_block
from diffcap.timeline import Caption

if TYPE_CHECKING:
    from diffcap.prompts.presets import TemplateSet

#: Times one level is planned again after the server refused a part as over the context.
MAX_REPLANS = 4
#: A part's size may stray this far from an even split to end at a better break.
SLACK = 0.25
#: Parts are planned this full on average, so each can grow to its room to reach a break.
FILL = 0.85


@dataclass
class Node:
    """One item of a level: a caption (level 0) or a part's summary."""

    id: str
    level: int
    start: float
    end: float
    content: str
    #: Index of the last caption (level 0) this item covers: the break after it.
    last_leaf: int
    children: list[str] = field(default_factory=list)
    citations: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    # The timeline renderer reads ``time``/``start``/``end``/``content``.
    @property
    def time(self) -> float | None:
        return self.start if self.level == 0 else None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "level": self.level,
            "start": round(self.start, 6),
            "end": round(self.end, 6),
            "content": self.content,
            "children": self.children,
            "citations": self.citations,
        }
        if self.dropped:
            d["dropped_citations"] = self.dropped
        return d


def leaves(captions: Sequence[Caption], span: Span) -> list[Node]:
    """Level 0: one node per caption, each lasting until the next caption (the last until
    the end of the span)."""
    out = []
    for i, c in enumerate(captions):
        start = float(c.time if c.time is not None else span.start)
        nxt = captions[i + 1].time if i + 1 < len(captions) else None
        end = float(nxt) if nxt is not None else max(span.end, start)
        out.append(Node(c.idx, 0, start, end, c.content, i))
    return out


def time_breaks(captions: Sequence[Caption]) -> list[float]:
    """Break scores from time gaps alone (1.0 = the median gap), for when no images are at
    hand (a clip summary from a records file)."""
    times = [float(c.time or 0.0) for c in captions]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    if not gaps:
        return []
    median = sorted(gaps)[len(gaps) // 2] or 1.0
    return [min(g / median, 4.0) for g in gaps]


def plan_groups(
    costs: Sequence[int], room: int, breaks: Sequence[float], parts: int | None = None
) -> list[tuple[int, int]]:
    """Cut items ``0..n-1`` (token ``costs``) into consecutive groups ``[a, b)`` of at most
    ``room`` each: ``parts`` groups (default: enough to fill each to :data:`FILL` of the room
    on average; more only when the room forces it), each ending at the largest ``breaks[i]``
    (the break after item ``i``) within :data:`SLACK` of an even split of what is left; on a
    tie, the fuller group."""
    if any(c > room for c in costs):
        raise ValueError("an item is larger than the room of a group")
    n, a = len(costs), 0
    groups: list[tuple[int, int]] = []
    k = parts or max(1, math.ceil(sum(costs) / (room * FILL)))
    while a < n:
        rest = sum(costs[a:])
        left = max(1, k - len(groups))
        if rest / left > room:  # the room forces more parts
            left = math.ceil(rest / room)
            k = len(groups) + left
        if left == 1 and rest <= room:
            groups.append((a, n))
            break
        target = rest / left
        lo, hi = target * (1 - SLACK), min(room, target * (1 + SLACK))
        acc, best, best_score, last_fit = 0, None, -math.inf, a + 1
        for b in range(a + 1, n):
            acc += costs[b - 1]
            if acc > hi:
                break
            last_fit = b
            score = breaks[b - 1] if b - 1 < len(breaks) else 0.0
            if acc >= lo and score >= best_score:
                best, best_score = b, score
        b = best if best is not None else last_fit
        groups.append((a, b))
        a = b
    return groups


@dataclass
class _Tree:
    caller: Caller
    templates: TemplateSet
    span: Span
    breaks: Sequence[float]
    model: str | None
    nodes: list[Node] = field(default_factory=list)

    def render(self, name: str, items: Sequence[Node], start: float, end: float) -> str:
        sub = Span(start, end, self.span.video_duration)
        variables = sub.variables()
        if (start, end) == (self.span.start, self.span.end):
            variables = self.span.variables()
        return str(
            self.templates[name].render(
                timeline=list(items),
                num_frames=len(items),
                start_stamp=clock(start),
                end_stamp=clock(end),
                **variables,
            )
        )

    def item_cost(self, name: str, item: Node) -> int:
        line = self.templates[name].item
        # The line as rendered, counted alone (a few tokens of the join are in the margin).
        text = self.render_line(line, item)
        return self.caller.prompt_tokens(text) if self.caller.budget else 1

    @staticmethod
    def render_line(item_format: str, item: Node) -> str:
        return timeline_block([item], item_format)

    def room(self, name: str) -> int:
        b = self.caller.budget
        empty = self.render(name, [], self.span.start, self.span.end)
        return int(b.room(0) - self.caller.prompt_tokens(empty)) if b else 1 << 30

    async def level(self, items: list[Node], level: int) -> list[Node]:
        """The next level up: ``items`` cut into parts, each part summarised."""
        name = "segment_summary" if level == 1 else "merge_summary"
        for _ in range(MAX_REPLANS + 1):
            room = self.room(name)
            costs = [self.item_cost(name, it) for it in items]
            b = self.caller.budget
            if (room <= 0 or 2 * max(costs) > room) and b is not None and await b.calibrate():
                room = self.room(name)
                costs = [self.item_cost(name, it) for it in items]
            if room <= 0 or 2 * max(costs) > room:
                raise self._too_small(name, room, max(costs))
            scores = [
                self.breaks[it.last_leaf] if it.last_leaf < len(self.breaks) else 0.0
                for it in items
            ]
            groups = self.fitted(plan_groups(costs, room, scores), items, name)
            tasks = [self.part(items[a:b], level, i, name) for i, (a, b) in enumerate(groups)]
            done = await asyncio.gather(*tasks, return_exceptions=True)
            over = [r for r in done if isinstance(r, ContextExceeded)]
            errors = [r for r in done if isinstance(r, BaseException) and r not in over]
            if errors:
                raise errors[0]
            if not over:
                return [r for r in done if isinstance(r, Node)]
        raise ContextExceeded(f"summary level {level}: still over the context after replanning")

    async def part(self, items: list[Node], level: int, i: int, name: str) -> Node:
        start, end = items[0].start, items[-1].end
        prompt = self.render(name, items, start, end)
        text = await self.caller.ask(prompt, (), step=f"summary:{level}.{i}", model=self.model)
        node = Node(f"{level}.{i}", level, start, end, text, items[-1].last_leaf)
        node.children = [it.id for it in items]
        self.cite(node)
        return node

    def cite(self, node: Node) -> None:
        node.content, node.citations, node.dropped = check_citations(
            node.content, node.start, node.end
        )

    def fitted(
        self, groups: list[tuple[int, int]], items: Sequence[Node], name: str
    ) -> list[tuple[int, int]]:
        """``groups`` with each one whose real prompt (its own range and stamps, lines
        joined) does not fit split in two until it does."""
        out: list[tuple[int, int]] = []
        todo = list(reversed(groups))
        while todo:
            a, b = todo.pop()
            part = items[a:b]
            if b - a > 1 and not self.caller.fits(
                self.render(name, part, part[0].start, part[-1].end)
            ):
                mid = (a + b) // 2
                todo += [(mid, b), (a, mid)]
                continue
            out.append((a, b))
        return out

    def _too_small(self, name: str, room: int, largest: int) -> Exception:
        b = self.caller.budget
        what = f"the {name} request (two items of {largest:,} tokens, room {max(room, 0):,})"
        fixed = max(0, (b.room(0) if b else 0) - room)
        err: Exception = b.too_small(what, fixed + 2 * largest, 0, self.caller.model_name)
        return err


async def summarize_tree(
    captions: Sequence[Caption],
    caller: Caller,
    templates: TemplateSet,
    *,
    span: Span,
    model: str | None = None,
    breaks: Callable[[], Awaitable[Sequence[float]]] | None = None,
    single: str = "summary",
    variables: dict[str, Any] | None = None,
) -> tuple[Caption, dict[str, Any] | None]:
    """The caption of ``span`` (idx ``"-1"``) and, when it took more than one request, the
    tree (:func:`tree_json`). ``single`` names the template of the one-request case
    (``summary``, or ``clip_summary`` for clip summaries); ``breaks()`` gives the score of
    the break after each caption, asked only when a tree is needed (default: time gaps).
    ``variables``: more variables of the one-request template (e.g. ``camera`` facts)."""
    more = {"camera": "", **(variables or {})}
    prompt = templates[single].render(
        timeline=list(captions), num_frames=len(captions), **more, **span.variables()
    )
    if await caller.ensure_fits(prompt):
        try:
            text = await caller.ask(prompt, (), step=single, model=model)
            return Caption(idx="-1", content=text, start=span.start, end=span.end), None
        except ContextExceeded:
            if caller.budget is None:
                raise
    scores = list(await breaks()) if breaks is not None else time_breaks(captions)
    tree = _Tree(caller, templates, span, scores, model)
    items = leaves(captions, span)
    level = 1
    while True:
        items = await tree.level(items, level)
        tree.nodes.extend(items)
        level += 1
        root = await _root(tree, items, level)
        if root is not None:
            tree.nodes.append(root)
            caption = Caption(idx="-1", content=root.content, start=span.start, end=span.end)
            return caption, tree_json(tree.nodes, level)


async def _root(tree: _Tree, items: list[Node], level: int) -> Node | None:
    """The root over ``items`` when it fits one request (None: another level is needed)."""
    if len(items) == 1:
        only = items[0]
        return Node(
            "-1",
            level,
            tree.span.start,
            tree.span.end,
            only.content,
            only.last_leaf,
            [only.id],
            only.citations,
            only.dropped,
        )
    span = tree.span
    prompt = tree.render("merge_summary", items, span.start, span.end)
    if not tree.caller.fits(prompt):
        return None
    try:
        text = await tree.caller.ask(prompt, (), step="summary", model=tree.model)
    except ContextExceeded:
        return None  # the budget learned the server's limit: one more level
    root = Node("-1", level, span.start, span.end, text, items[-1].last_leaf, [i.id for i in items])
    tree.cite(root)
    return root


def tree_json(nodes: Sequence[Node], levels: int) -> dict[str, Any]:
    """The record's ``summary_tree``: ``levels`` (root included) and every node, level 1
    first, each ``{id, level, start, end, content, children, citations[,
    dropped_citations]}``; the root has id ``"-1"``."""
    return {"levels": levels, "nodes": [n.to_json() for n in nodes]}
