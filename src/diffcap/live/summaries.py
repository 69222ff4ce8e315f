"""Rolling summaries of a live run, and its summary at the end, grown from them.

Every ``summary_every_s`` of stream time the captions of the window since the last summary
are summarised (:func:`~diffcap.captioning.tree.summarize_tree`: one request, or a tree when
the window does not fit), in the background so captioning goes on. At the end the last
window is summarised the same way and the windows' summaries are merged into the run's
summary (``merge_summary``, with time-range citations); when the windows themselves do not
fit one request, the run's captions are summarised as a tree instead. Any window can be
summarised on demand from the records file (:func:`summarize_window`, ``diffcap summarize``).

    s = Summaries(run); s.maybe_roll(now_stream_time); await s.finish()
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from diffcap.captioning.calls import Span
from diffcap.captioning.citations import check_citations
from diffcap.captioning.tree import summarize_tree
from diffcap.errors import DiffcapError
from diffcap.io.livefile import LiveState
from diffcap.prompts.render import clock
from diffcap.timeline import Caption, Usage, VideoRecord

log = logging.getLogger(__name__)


class Summaries:
    def __init__(self, run: Any) -> None:
        self.run = run
        self.windows: list[Caption] = list(run.state.summaries)
        self.summarized_to: float = run.state.summarized_to
        self.tasks: set[asyncio.Task[None]] = set()

    def maybe_roll(self, now: float) -> None:
        """Start the summary of ``[summarized_to, now]`` when a window has passed."""
        every = self.run.opts.summary_every_s
        if every <= 0 or now - self.summarized_to < every:
            return
        start, self.summarized_to = self.summarized_to, now
        task = asyncio.create_task(self._window(start, now))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _inside(self, start: float, end: float) -> list[Caption]:
        return [c for c in self.run.captions if c.time is not None and start <= c.time <= end]

    async def _window(self, start: float, end: float, *, strict: bool = False) -> None:
        caps = self._inside(start, end)
        if not caps:
            return
        try:
            text, tree = await self._summarize(caps, Span(start, end, end))
        except DiffcapError as exc:
            if strict:
                raise
            log.warning("rolling summary %.0f-%.0f s failed: %s", start, end, exc)
            return
        line: dict[str, Any] = {"type": "summary", "start": round(start, 3), "end": round(end, 3)}
        line["content"] = text
        if tree is not None:
            line["tree"] = tree
        self.windows.append(Caption("-1", text, start=start, end=end))
        self.run.report.summaries += 1
        self.run.emit(line)

    async def _summarize(
        self, caps: list[Caption], span: Span
    ) -> tuple[str, dict[str, Any] | None]:
        model = self.run.cfg.summary.model
        caption, tree = await summarize_tree(
            caps, self.run.caller, self.run.templates, span=span, model=model
        )
        return caption.content, tree

    async def finish(self) -> None:
        """The last window, the run's summary and ``record.json`` (when summaries are on)."""
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        run = self.run
        if not run.cfg.summary.enabled or not run.captions:
            self.write_record(None)
            return
        end = max(c.time or 0.0 for c in run.captions)
        try:
            if end > self.summarized_to or not self.windows:
                await self._window(self.summarized_to, end, strict=True)
                self.summarized_to = end
            final = await self._final(end)
        except DiffcapError as exc:
            log.warning("the run's summary failed: %s", exc)
            self.write_record(None)
            return
        run.emit({"type": "summary", "final": True, "start": 0.0, "end": round(end, 3),
                  "windows": len(self.windows), "content": final.content})  # fmt: skip
        self.write_record(final)

    async def _final(self, end: float) -> Caption:
        span = Span(0.0, end, end)
        if len(self.windows) == 1:
            return Caption("-1", self.windows[0].content, start=0.0, end=end)
        prompt = self.run.templates["merge_summary"].render(
            timeline=self.windows, num_frames=len(self.windows), **_stamps(span)
        )
        if await self.run.caller.ensure_fits(prompt):
            model = self.run.cfg.summary.model
            text = await self.run.caller.ask(prompt, (), step="summary", model=model)
            text = check_citations(text, span.start, span.end)[0]  # drops invented times
        else:  # too many windows for one request: the tree over every caption
            text, _ = await self._summarize(list(self.run.captions), span)
        return Caption("-1", text, start=0.0, end=end)

    def write_record(self, final: Caption | None) -> None:
        """``<run>/record.json``: the run as one diffcap record (for export and view)."""
        run = self.run
        rec = VideoRecord(
            video_id="live",
            video_path=run.source,
            duration=max((c.time or 0.0 for c in run.captions), default=0.0),
            keyframes=list(run.kfs),
            captions=[*run.captions, *([final] if final else [])],
            mode="slide",
            provenance={"live": True, "source": run.source, "model": run.caller.model_name},
            usage=run.caller.usage if isinstance(run.caller.usage, Usage) else Usage(),
            extra={"rolling_summaries": [w.to_json() for w in self.windows]},
        )
        path = Path(run.run_dir) / "record.json"
        path.write_text(json.dumps(rec.to_json(), ensure_ascii=False) + "\n", encoding="utf-8")


def _stamps(span: Span) -> dict[str, Any]:
    return {"start_stamp": clock(span.start), "end_stamp": clock(span.end), **span.variables()}


async def summarize_window(
    out: Path, start: float, end: float, caller: Any, templates: Any, model: str | None = None
) -> Caption:
    """The summary of stream seconds ``[start, end]`` of a live records file, on demand."""
    caps = [
        c for c in LiveState.read(out).captions if c.time is not None and start <= c.time <= end
    ]
    if not caps:
        raise DiffcapError(f"{out}: no caption between {start:g} s and {end:g} s")
    caption, _ = await summarize_tree(
        caps, caller, templates, span=Span(start, end, end), model=model
    )
    return caption
