"""What the viewer shows, as plain data: list rows, filters, one video's detail, facets.

Shared by the served viewer (:mod:`diffcap.web.viewer`) and the static report
(:mod:`diffcap.web.report`), so both list, filter and page the same way.

    hits = [list_item(k, e) for k, e in enumerate(entries) if entry_matches(e, {"q": "ball"})]
    page = page_slice(hits, offset=0, limit=PAGE_SIZE)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from diffcap.timeline import format_time
from diffcap.web.data import KeyframeView, VideoEntry
from diffcap.web.tree import tree_view

PAGE_SIZE = 100  # list rows per page, served and static alike
MAX_PAGE = 500

T = TypeVar("T")


def page_slice(items: Sequence[T], offset: int, limit: int) -> list[T]:
    """``items[offset:offset + limit]`` with both clamped to sane values."""
    offset = max(0, offset)
    limit = min(max(1, limit), MAX_PAGE)
    return list(items[offset : offset + limit])


def entry_matches(e: VideoEntry, filters: dict[str, str]) -> bool:
    """The list filters: ``q`` (substring of id or caption text), status, mode, model, run."""
    q = (filters.get("q") or "").strip().lower()
    if q and q not in e.search_text():
        return False
    for key in ("status", "mode", "model", "run"):
        want = filters.get(key)
        if want and getattr(e, key) != want:
            return False
    return True


def list_item(key: int, e: VideoEntry) -> dict[str, Any]:
    snippet = (e.summary or (e.notes[0]["message"] if e.notes else "") or "")[:160]
    return {
        "key": key,
        "run": e.run,
        "video_id": e.video_id,
        "status": e.status,
        "mode": e.mode,
        "model": e.model,
        "duration": e.duration,
        "n_keyframes": len(e.keyframes),
        "snippet": snippet,
    }


def entry_detail(
    key: int,
    e: VideoEntry,
    kf_src: Callable[[int, KeyframeView], str | None],
    media_url: str | None,
) -> dict[str, Any]:
    """Everything the page shows for one video; ``kf_src(i, keyframe)`` gives its image URL."""
    d = list_item(key, e)
    d.update(
        video_path=e.video_path,
        keyframes=[
            {
                "idx": k.idx,
                "time": k.time,
                "label": format_time(k.time),
                "src": kf_src(i, k),
                "caption": k.caption,
                "camera": k.camera,
            }
            for i, k in enumerate(e.keyframes)
        ],
        summary=e.summary,
        summary_tree=tree_view(e.summary_tree),
        clips=[
            dict(c, label=f"{format_time(c['start'])}–{format_time(c['end'])}") for c in e.clips
        ],
        provenance=e.provenance,
        usage=e.usage,
        notes=e.notes,
        media=media_url,
    )
    return d


def facets(entries: Sequence[VideoEntry]) -> dict[str, Any]:
    def values(attr: str) -> list[str]:
        return sorted({getattr(e, attr) for e in entries if getattr(e, attr)})

    return {
        "runs": values("run"),
        "statuses": values("status"),
        "modes": values("mode"),
        "models": values("model"),
        "total": len(entries),
    }
