"""A record's ``summary_tree`` (long videos' summary by levels) as the viewer shows it.

The record's tree is untrusted input: :func:`read_tree` keeps only well-typed fields and
drops what is malformed, and :func:`tree_view` turns each node's text into ``parts``, plain
text pieces and citation pieces (``{"text", "t"}``, found by the verbatim texts of the node's
``citations`` list), which the page renders with ``textContent`` and buttons, never as HTML.

    tree = read_tree(record.get("summary_tree"))     # None when absent or unusable
    view = tree_view(tree)   # {"levels", "root", "nodes": {id: {..., "parts": [...]}}}
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from diffcap.timeline import format_clock

logger = logging.getLogger(__name__)

__all__ = ["read_tree", "split_citations", "tree_view"]

MAX_NODES = 100_000  # a bound on what one record may make the page draw


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and value >= 0 else None


def _citation(c: Any) -> dict[str, Any] | None:
    if not isinstance(c, dict) or not isinstance(c.get("text"), str) or not c["text"]:
        return None
    start = _seconds(c.get("start"))
    if start is None:
        return None
    end = _seconds(c.get("end"))
    return {"text": c["text"], "start": start, "end": start if end is None else max(end, start)}


def _node(n: Any) -> dict[str, Any] | None:
    if not isinstance(n, dict):
        return None
    start, end = _seconds(n.get("start")), _seconds(n.get("end"))
    level = n.get("level")
    if start is None or end is None or not isinstance(level, int) or isinstance(level, bool):
        return None
    children = n.get("children")
    citations = n.get("citations")
    children = children if isinstance(children, list) else []
    citations = citations if isinstance(citations, list) else []
    return {
        "id": str(n.get("id", "")),
        "level": level,
        "start": start,
        "end": max(end, start),
        "content": n["content"] if isinstance(n.get("content"), str) else "",
        "children": [str(c) for c in children if isinstance(c, (str, int))],
        "citations": [c for c in map(_citation, citations) if c is not None],
    }


def read_tree(raw: Any) -> dict[str, Any] | None:
    """The usable part of a record's ``summary_tree``: ``{"levels", "nodes"}`` with nodes in
    the record's order, or None when there is none (short videos) or no node is usable."""
    if raw is None:
        return None
    nodes_in = raw.get("nodes") if isinstance(raw, dict) else None
    if not isinstance(nodes_in, list):
        logger.warning("skipped a summary_tree that has no node list")
        return None
    nodes = [n for n in map(_node, nodes_in[:MAX_NODES]) if n is not None]
    if len(nodes) < len(nodes_in[:MAX_NODES]):
        logger.warning("summary_tree: skipped %d malformed node(s)", len(nodes_in) - len(nodes))
    if not nodes:
        return None
    levels = raw.get("levels")
    top = max(n["level"] for n in nodes)
    return {"levels": levels if isinstance(levels, int) and levels >= top else top, "nodes": nodes}


def split_citations(content: str, citations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``content`` cut into ``{"text"}`` and ``{"text", "t"}`` (a citation, seeking to ``t``)
    pieces. A citation is found by its verbatim ``text``; text that no citation names stays
    plain. One pass over the content (an alternation of the citation texts)."""
    starts: dict[str, float] = {}
    for c in citations:
        starts.setdefault(c["text"], c["start"])
    if not starts or not content:
        return [{"text": content}] if content else []
    pattern = re.compile("|".join(re.escape(t) for t in sorted(starts, key=len, reverse=True)))
    parts: list[dict[str, Any]] = []
    pos = 0
    for m in pattern.finditer(content):
        if m.start() > pos:
            parts.append({"text": content[pos : m.start()]})
        parts.append({"text": m.group(), "t": starts[m.group()]})
        pos = m.end()
    if pos < len(content):
        parts.append({"text": content[pos:]})
    return parts


def _root_id(nodes: list[dict[str, Any]]) -> str:
    """The node with id "-1" (the schema's root), else the last node of the highest level."""
    if any(n["id"] == "-1" for n in nodes):
        return "-1"
    top = max(n["level"] for n in nodes)
    return [n for n in nodes if n["level"] == top][-1]["id"]


def _claim_kids(
    nodes: dict[str, dict[str, Any]], root: str
) -> tuple[dict[str, list[str]], list[str]]:
    """Each node's children that it draws: existing nodes of a lower level, each drawn under
    the first parent that names it (so a record cannot make the page draw a node twice or
    loop), walked breadth-first from the root, then from each node still unreached (highest
    level first). Returns (kids by id, the tops walked from: the root first)."""
    kids: dict[str, list[str]] = {nid: [] for nid in nodes}
    seen: set[str] = set()
    tops: list[str] = []
    others = sorted((nid for nid in nodes if nid != root), key=lambda i: -nodes[i]["level"])
    for top in [root, *others]:
        if top in seen:
            continue
        seen.add(top)
        tops.append(top)
        queue = [top]
        for nid in queue:  # the queue grows while it is walked
            n = nodes[nid]
            for c in n["children"] if n["level"] > 1 else []:
                if c in nodes and c not in seen and nodes[c]["level"] < n["level"]:
                    seen.add(c)
                    kids[nid].append(c)
                    queue.append(c)
    return kids, tops


def tree_view(tree: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the page draws: ``root`` (its id), ``nodes`` keyed by id, each with its range
    ``label``, text ``parts`` and ``kids`` (ids drawn under it; level-1 nodes keep
    ``captions``, how many caption idx values they cover), and ``rest``: the tops of the parts
    that the root does not reach (drawn after the root's, highest level first)."""
    if tree is None:
        return None
    nodes: dict[str, dict[str, Any]] = {}
    for n in tree["nodes"]:
        nodes.setdefault(n["id"], n)  # a repeated id keeps its first node
    root = _root_id(tree["nodes"])
    kids, tops = _claim_kids(nodes, root)
    view = {
        nid: {
            "id": nid,
            "level": n["level"],
            "start": n["start"],
            "end": n["end"],
            "label": f"{format_clock(n['start'])}–{format_clock(n['end'])}",
            "parts": split_citations(n["content"], n["citations"]),
            "kids": kids[nid],
            "captions": len(n["children"]) if n["level"] <= 1 else 0,
        }
        for nid, n in nodes.items()
    }
    return {"levels": tree["levels"], "root": root, "nodes": view, "rest": tops[1:]}
