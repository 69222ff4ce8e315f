"""Server-sent events for a live run in the viewer: the timeline grows as captions come.

``GET /api/live/<key>?from=<byte offset>`` answers ``text/event-stream``: every complete line
appended to the live records file after the offset, as one event (``event:`` its type,
``id:`` the byte offset after it, so a reconnecting browser resumes with ``Last-Event-ID``).
A caption's event carries the keyframe as the page shows it (``idx``, ``time``, ``label``,
``src``, ``caption``); its image joins the files the server may send. The stream ends after
the run's ``end`` line, or when the browser goes away.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse

from diffcap.timeline import format_time
from diffcap.web.data import KeyframeView, VideoEntry

#: Seconds between looks at the file, and between keep-alive comments.
POLL_S = 0.5
KEEPALIVE_S = 15.0


def read_from(path: Path, offset: int) -> tuple[list[tuple[int, dict[str, Any]]], int]:
    """Complete lines after byte ``offset``: [(offset after the line, object)], new offset."""
    out: list[tuple[int, dict[str, Any]]] = []
    with path.open("rb") as fh:
        fh.seek(offset)
        for raw in fh:
            if not raw.endswith(b"\n"):
                break
            offset += len(raw)
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append((offset, obj))
    return out, offset


def live_response(
    request: Request,
    path: Path,
    entry: VideoEntry,
    allow: Callable[[str], None],
    src: Callable[[KeyframeView], str | None],
) -> StreamingResponse:
    """The event stream of ``entry`` (see the module docstring)."""
    start = request.headers.get("last-event-id") or request.query_params.get("from") or ""
    offset = int(start) if start.isdigit() else int(entry.provenance.get("live_offset", 0))

    async def events() -> AsyncIterator[str]:
        nonlocal offset
        quiet = 0.0
        while not await request.is_disconnected():
            lines, offset = await asyncio.to_thread(read_from, path, offset)
            for end, obj in lines:
                data = _payload(obj, entry, allow, src)
                yield f"id: {end}\nevent: {obj.get('type', 'line')}\ndata: {data}\n\n"
                if obj.get("type") == "end":
                    return
            quiet = 0.0 if lines else quiet + POLL_S
            if quiet >= KEEPALIVE_S:
                quiet = 0.0
                yield ": keep-alive\n\n"
            await asyncio.sleep(POLL_S)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def _payload(
    obj: dict[str, Any],
    entry: VideoEntry,
    allow: Callable[[str], None],
    src: Callable[[KeyframeView], str | None],
) -> str:
    if obj.get("type") != "caption":
        return json.dumps(obj, ensure_ascii=False)
    file = obj.get("keyframe")
    k = KeyframeView(int(obj["idx"]), float(obj["time"]), file, str(obj.get("content", "")))
    if all(x.idx != k.idx for x in entry.keyframes):
        entry.keyframes.append(k)  # a page loaded later shows it too
        entry.duration = max(entry.duration, k.time)
        entry._search = None
    if file:
        allow(file)
    view = {"idx": k.idx, "time": k.time, "label": format_time(k.time), "src": src(k),
            "caption": k.caption, "wall": obj.get("wall")}  # fmt: skip
    return json.dumps({**obj, "keyframe_view": view}, ensure_ascii=False)
