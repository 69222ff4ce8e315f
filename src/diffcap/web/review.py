"""Blind side-by-side preference review of two or more captioning runs.

For every pair of systems and every video both captioned, the reviewer sees the keyframes
and the two whole-video summaries in a left/right order that is random but stable for
(reviewer, item), and picks left, right or tie. Nothing the page receives names a system:
items are opaque tokens and the server works out which system was left when a vote arrives.

    app = ReviewApp(load_runs(["runA", "runB"]), VoteStore("votes.sqlite"), reviewer="ann")
    server = make_server(app)          # GET / is the page

A vote is a POST of JSON; the server's guard refuses it from another origin (see
:mod:`diffcap.web.guard`).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from diffcap.errors import ConfigError
from diffcap.store.votes import CHOICES, VoteStore
from diffcap.timeline import format_time
from diffcap.web.data import Run, VideoEntry
from diffcap.web.pages import page
from diffcap.web.safety import PathRefused, contained_file
from diffcap.web.server import App, error, html_response

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReviewItem:
    video_id: str
    system_a: str  # system_a < system_b
    system_b: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.video_id, self.system_a, self.system_b)


def _h(*parts: str) -> bytes:
    return hashlib.sha256("\x00".join(parts).encode()).digest()


def left_system(reviewer: str, item: ReviewItem) -> str:
    """The system shown on the left: a coin flip seeded by (reviewer, item), so a reload or
    a restart shows the same order, while different reviewers get different orders."""
    return item.system_a if _h("side", reviewer, *item.key)[0] & 1 else item.system_b


def build_items(runs: Sequence[Run]) -> list[ReviewItem]:
    """One item per pair of systems per video that both summarised."""
    if len(runs) < 2:
        raise ConfigError("the review needs at least two runs", hint="diffcap review RUN_A RUN_B")
    summarised = [{e.video_id for e in r.entries if e.status == "ok" and e.summary} for r in runs]
    items = []
    for i, j in itertools.combinations(range(len(runs)), 2):
        a, b = sorted((runs[i].name, runs[j].name))
        items += [ReviewItem(v, a, b) for v in sorted(summarised[i] & summarised[j])]
    if not items:
        raise ConfigError(
            "the runs share no video with a summary in both",
            hint="review runs captioned over the same videos (same video_id)",
        )
    return items


class ReviewApp(App):
    def __init__(self, runs: Sequence[Run], store: VoteStore, reviewer: str = "anonymous") -> None:
        super().__init__()
        self.runs = {r.name: r for r in runs}
        self.entries = {r.name: {e.video_id: e for e in r.entries} for r in runs}
        self.items = build_items(runs)
        self.store = store
        self.reviewer = reviewer
        # Tokens are keyed by a per-server secret so they say nothing about the systems.
        secret = secrets.token_bytes(16)
        self.tokens = {
            hmac.new(secret, "\x00".join(it.key).encode(), "sha256").hexdigest()[:24]: it
            for it in self.items
        }
        self.token_of = {it: t for t, it in self.tokens.items()}
        self.route("GET", "/", self._page)
        self.route("GET", "/api/review/next", self._next)
        self.route("POST", "/api/review/vote", self._vote)
        self.route("GET", "/api/review/kf/{token:str}/{n:int}", self._keyframe)
        self.route("GET", "/api/review/video/{token:str}", self._video)
        logger.info("review: %d systems, %d items", len(self.runs), len(self.items))

    def _page(self, request: Request) -> Response:
        return html_response(
            page("review", "diffcap blind review", {"mode": "server", "reviewer": self.reviewer})
        )

    def queue(self, reviewer: str) -> list[ReviewItem]:
        """Items not yet voted on, in an order shuffled per reviewer (pairs interleave)."""
        voted = self.store.voted(reviewer)
        todo = [it for it in self.items if it.key not in voted]
        return sorted(todo, key=lambda it: _h("order", reviewer, *it.key))

    def _reviewer(self, value: Any) -> str | None:
        if value is None:
            value = self.reviewer
        if not isinstance(value, str):  # a list or an object is no name
            return None
        name = value.strip()
        return name if 0 < len(name) <= 100 else None

    def _next(self, request: Request) -> Response:
        reviewer = self._reviewer(request.query_params.get("reviewer"))
        if reviewer is None:
            return error(400, "reviewer name must be 1-100 characters")
        todo = self.queue(reviewer)
        progress = {"voted": len(self.items) - len(todo), "total": len(self.items)}
        if not todo:
            return JSONResponse({"done": True, "progress": progress})
        return JSONResponse({"done": False, "progress": progress, **self._show(reviewer, todo[0])})

    def _pictures(self, item: ReviewItem) -> VideoEntry:
        """Whose keyframes to show: the same for both sides (system_a's when it has any)."""
        a = self.entries[item.system_a][item.video_id]
        return a if a.keyframes else self.entries[item.system_b][item.video_id]

    def _show(self, reviewer: str, item: ReviewItem) -> dict[str, Any]:
        token = self.token_of[item]
        left = left_system(reviewer, item)
        right = item.system_b if left == item.system_a else item.system_a
        pics = self._pictures(item)
        has_media = any(self.entries[s][item.video_id].media for s in (left, right))
        return {
            "item": token,
            "duration": pics.duration,
            "keyframes": [
                {
                    "time": k.time,
                    "label": format_time(k.time),
                    "src": f"/api/review/kf/{token}/{n}" if k.file else None,
                }
                for n, k in enumerate(pics.keyframes)
            ],
            "media": f"/api/review/video/{token}" if has_media else None,
            "left": self.entries[left][item.video_id].summary,
            "right": self.entries[right][item.video_id].summary,
        }

    async def _vote(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):  # deep nesting too
            body = None
        if not isinstance(body, dict):
            return error(400, "expected a JSON object")
        reviewer = self._reviewer(body.get("reviewer"))
        item = self.tokens.get(str(body.get("item")))
        choice = body.get("choice")
        if reviewer is None or item is None or choice not in CHOICES:
            return error(400, "need reviewer, a known item and choice left/right/tie")
        left = left_system(reviewer, item)
        new = await run_in_threadpool(
            self.store.record,
            reviewer,
            item.video_id,
            item.system_a,
            item.system_b,
            left=left,
            choice=choice,
        )
        logger.debug("vote by %s on %s: %s (new=%s)", reviewer, item.video_id, choice, new)
        return JSONResponse({"ok": True, "recorded": new})

    def _keyframe(self, request: Request) -> Response:
        item = self.tokens.get(request.path_params["token"])
        if item is None:
            return error(404, "no such item")
        pics = self._pictures(item)
        n = request.path_params["n"]
        if n >= len(pics.keyframes) or not pics.keyframes[n].file:
            return error(404, "no such keyframe")
        try:
            path = contained_file(self.runs[pics.run].root, pics.keyframes[n].file or "")
        except PathRefused as exc:
            return error(exc.status, str(exc))
        return FileResponse(path)

    def _video(self, request: Request) -> Response:
        item = self.tokens.get(request.path_params["token"])
        if item is None:
            return error(404, "no such item")
        for s in (item.system_a, item.system_b):
            media = self.entries[s][item.video_id].media
            if media and media.is_file():
                return FileResponse(media)
        return error(404, "no registered video file")
