"""The caption-timeline viewer: a JSON API over loaded runs, plus the page that uses it.

    app = ViewerApp(load_runs(["out/run1"]))
    server = make_server(app)   # GET / is the page; /api/videos lists, filters, pages, searches

Keyframes are served from ``/files/<run>/<path>`` only when the path is inside the run
directory and named by a record; a video from ``/media/<key>`` only when the run registered
it (see :mod:`diffcap.web.data`): the URL carries a number, never a path.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from diffcap.web.data import KeyframeView, Run, VideoEntry
from diffcap.web.listing import (
    PAGE_SIZE,
    entry_detail,
    entry_matches,
    facets,
    list_item,
    page_slice,
)
from diffcap.web.pages import page
from diffcap.web.safety import PathRefused, contained_file
from diffcap.web.server import App, error, html_response

logger = logging.getLogger(__name__)

_FILTERS = ("q", "status", "mode", "model", "run")


def _int(value: str | None, default: int) -> int | None:
    """A non-negative query integer; None when it is not one (answered 400)."""
    if value is None or value == "":
        return default
    return int(value) if value.isdigit() and len(value) < 10 else None


class ViewerApp(App):
    def __init__(self, runs: Sequence[Run]) -> None:
        super().__init__()
        self.runs = list(runs)
        self.entries: list[tuple[int, VideoEntry]] = [
            (i, e) for i, run in enumerate(self.runs) for e in run.entries
        ]
        self.allowed = [run.files() for run in self.runs]
        self.route("GET", "/", self._page)
        self.route("GET", "/api/meta", self._meta)
        self.route("GET", "/api/videos", self._list)
        self.route("GET", "/api/videos/{key:int}", self._detail)
        self.route("GET", "/files/{run:int}/{rel:path}", self._file)
        self.route("GET", "/media/{key:int}", self._media)
        self.route("GET", "/api/live/{key:int}", self._live)

    def _page(self, request: Request) -> Response:
        return html_response(
            page("viewer", "diffcap viewer", {"mode": "server", "page_size": PAGE_SIZE})
        )

    def _meta(self, request: Request) -> Response:
        return JSONResponse(facets([e for _, e in self.entries]))

    def _list(self, request: Request) -> Response:
        """``?q=&status=&mode=&model=&run=&offset=&limit=``: one page of matching rows."""
        filters = {k: request.query_params.get(k, "") for k in _FILTERS}
        offset = _int(request.query_params.get("offset"), 0)
        limit = _int(request.query_params.get("limit"), PAGE_SIZE)
        if offset is None or limit is None:
            return error(400, "offset and limit must be non-negative integers")
        keys = [k for k, (_, e) in enumerate(self.entries) if entry_matches(e, filters)]
        rows = [list_item(k, self.entries[k][1]) for k in page_slice(keys, offset, limit)]
        return JSONResponse({"total": len(keys), "offset": offset, "items": rows})

    def _entry(self, key: int) -> tuple[int, VideoEntry] | None:
        return self.entries[key] if 0 <= key < len(self.entries) else None

    def _detail(self, request: Request) -> Response:
        key = request.path_params["key"]
        found = self._entry(key)
        if found is None:
            return error(404, "no such video")
        run_i, e = found

        def kf_src(i: int, k: KeyframeView) -> str | None:
            # quoted: file names may hold spaces, "#" or "?"; the router unquotes them
            return f"/files/{run_i}/{quote(k.file)}" if k.file else None

        media = f"/media/{key}" if e.media else None
        return JSONResponse(entry_detail(key, e, kf_src, media))

    def _file(self, request: Request) -> Response:
        run_i, rel = request.path_params["run"], request.path_params["rel"]
        if run_i >= len(self.runs):
            return error(404, "no such run")
        try:
            path = contained_file(self.runs[run_i].root, rel)
        except PathRefused as exc:
            logger.debug("refused %s: %s", request.url.path, exc)
            return error(exc.status, str(exc))
        if rel not in self.allowed[run_i]:
            return error(404, "not a keyframe of this run")
        return FileResponse(path)

    def _media(self, request: Request) -> Response:
        found = self._entry(request.path_params["key"])
        media = found[1].media if found else None
        if media is None or not media.is_file():
            return error(404, "no playable video file registered for this video")
        return FileResponse(media)

    def _live(self, request: Request) -> Response:
        """Server-sent events of a live run (:mod:`diffcap.web.live`)."""
        from diffcap.web.live import live_response

        found = self._entry(request.path_params["key"])
        if found is None or not found[1].provenance.get("live"):
            return error(404, "not a live run")
        run_i, e = found

        def src(k: KeyframeView) -> str | None:
            return f"/files/{run_i}/{quote(k.file)}" if k.file else None

        run = self.runs[run_i]
        return live_response(request, run.source, e, self.allowed[run_i].add, src)
