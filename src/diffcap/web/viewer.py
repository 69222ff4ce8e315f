"""The caption-timeline viewer: a JSON API over loaded runs, plus the page that uses it.

    app = ViewerApp(load_runs(["out/run1"]))
    server = make_server(app)          # GET / is the page; /api/videos lists, filters, searches

Keyframes are served from ``/files/<run>/<path>`` only when the path is inside the run
directory and named by a record; videos from ``/media/<key>`` only when a record names them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from diffcap.timeline import format_time
from diffcap.web.data import KeyframeView, Run, VideoEntry
from diffcap.web.pages import page
from diffcap.web.safety import PathRefused, contained_file
from diffcap.web.server import App, Request, Response, error, html_response, json_response

logger = logging.getLogger(__name__)

MAX_LIST = 500


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
    key: int, e: VideoEntry, kf_src: Callable[[KeyframeView], str | None], media_url: str | None
) -> dict[str, Any]:
    """Everything the page shows for one video; ``kf_src`` maps a keyframe to an image URL."""
    d = list_item(key, e)
    d.update(
        video_path=e.video_path,
        keyframes=[
            {
                "idx": k.idx,
                "time": k.time,
                "label": format_time(k.time),
                "src": kf_src(k),
                "caption": k.caption,
            }
            for k in e.keyframes
        ],
        summary=e.summary,
        clips=[
            dict(c, label=f"{format_time(c['start'])}–{format_time(c['end'])}") for c in e.clips
        ],
        provenance=e.provenance,
        usage=e.usage,
        notes=e.notes,
        media=media_url,
        search=e.search_text(),
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


class ViewerApp(App):
    def __init__(self, runs: Sequence[Run]) -> None:
        super().__init__()
        self.runs = list(runs)
        self.entries: list[tuple[int, VideoEntry]] = [
            (i, e) for i, run in enumerate(self.runs) for e in run.entries
        ]
        self.allowed = [run.files() for run in self.runs]
        self.route("GET", r"/", self._page)
        self.route("GET", r"/api/meta", self._meta)
        self.route("GET", r"/api/videos", self._list)
        self.route("GET", r"/api/videos/(\d+)", self._detail)
        self.route("GET", r"/files/(\d+)/(.+)", self._file)
        self.route("GET", r"/media/(\d+)", self._media)

    def _page(self, req: Request) -> Response:
        return html_response(page("viewer", "diffcap viewer", {"mode": "server"}))

    def _meta(self, req: Request) -> Response:
        return json_response(facets([e for _, e in self.entries]))

    def _list(self, req: Request) -> Response:
        hits = [
            list_item(k, e) for k, (_, e) in enumerate(self.entries) if entry_matches(e, req.query)
        ]
        return json_response({"total": len(hits), "items": hits[:MAX_LIST]})

    def _entry(self, key: str) -> tuple[int, VideoEntry] | None:
        k = int(key)
        return self.entries[k] if 0 <= k < len(self.entries) else None

    def _detail(self, req: Request) -> Response:
        found = self._entry(req.groups[0])
        if found is None:
            return error(404, "no such video")
        run_i, e = found
        key = int(req.groups[0])

        def kf_src(k: KeyframeView) -> str | None:
            # quoted: file names may hold spaces, "#" or "?"; the server unquotes them
            return f"/files/{run_i}/{quote(k.file)}" if k.file else None

        media = f"/media/{key}" if e.media else None
        return json_response(entry_detail(key, e, kf_src, media))

    def _file(self, req: Request) -> Response:
        run_i, rel = int(req.groups[0]), req.groups[1]
        if run_i >= len(self.runs):
            return error(404, "no such run")
        try:
            path = contained_file(self.runs[run_i].root, rel)
        except PathRefused as exc:
            logger.debug("refused %s: %s", req.raw_path, exc)
            return error(exc.status, str(exc))
        if rel not in self.allowed[run_i]:
            return error(404, "not a keyframe of this run")
        return Response(file=path)

    def _media(self, req: Request) -> Response:
        found = self._entry(req.groups[0])
        if found is None or found[1].media is None or not found[1].media.is_file():
            return error(404, "no playable video file for this record")
        return Response(file=found[1].media)
