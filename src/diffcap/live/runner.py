"""Caption a live stream as it plays: source -> on-the-fly keyframes -> bounded queue ->
DiffSW steps -> one JSON line per caption, the moment it exists.

    report = caption_live("http://127.0.0.1:8000/live.m3u8", Path("live.jsonl"), cfg,
                          LiveOptions(duration=600))
    report.captions, report.skipped, report.delays

A thread reads the source and selects keyframes; the event loop captions them one at a time
with :class:`~diffcap.captioning.slide.Chain` (``first`` at the start of a chain, after a
gap; ``differential`` otherwise) under the model's prompt budget, every call through the
run's request cache (``<stem>.run/run.sqlite``), and writes rolling summaries
(:func:`~diffcap.captioning.tree.summarize_tree`) every ``summary_every_s`` of stream time.
At the end (the stream ended, ``duration`` passed, Ctrl-C or SIGTERM) the last window is
summarised, the windows are merged into the run's summary, and ``record.json`` is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffcap.captioning.calls import Caller, KeyframeImages, Span, generation_options
from diffcap.captioning.slide import Chain, resolve_pair_layout
from diffcap.config import RunConfig
from diffcap.errors import BudgetExceeded, ContextExceeded, DiffcapError, ModelUnavailable
from diffcap.io.livefile import EventLog, LiveState, iso
from diffcap.keyframes.writer import cap_size, keyframe_name
from diffcap.live.options import Ended, Gap, LiveOptions
from diffcap.live.queue import DropQueue
from diffcap.live.select import LiveKeyframe, LiveSelector
from diffcap.live.source import LiveSource, source_kind
from diffcap.live.summaries import Summaries
from diffcap.prompts import load_templates
from diffcap.store.rundir import RunDir
from diffcap.timeline import Caption, Keyframe

log = logging.getLogger(__name__)

#: Waits between tries of a keyframe while the model server is down (doubling to the last).
MODEL_BACKOFF_S = (1.0, 2.0, 4.0, 8.0)


def run_dir_for(out: Path) -> Path:
    return RunDir.beside(out).root


@dataclass
class LiveReport:
    out: Path
    run_dir: Path
    reason: str = ""
    captions: int = 0
    skipped: int = 0
    gaps: int = 0
    summaries: int = 0
    #: Seconds from each captioned frame's arrival to its line written (this process).
    delays: list[float] = field(default_factory=list)
    #: Requests paid by this process / replayed from the run's cache.
    paid: int = 0
    replayed: int = 0


class LiveRun:
    """One process of a live run (see the module docstring)."""

    def __init__(
        self,
        source: str,
        out: Path,
        cfg: RunConfig,
        opts: LiveOptions,
        backend: Any,
        on_line: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.source, self.out, self.cfg, self.opts = source, out, cfg, opts
        self.run_dir = run_dir_for(out)
        self.backend = backend  # the run's CachedBackend
        self.on_line = on_line
        self.state = LiveState.read(out)
        self.log = EventLog(out)
        self.report = LiveReport(out, self.run_dir)
        self.stop = threading.Event()
        self.kfs: list[Keyframe] = list(self.state.keyframes)
        self.captions: list[Caption] = list(self.state.captions)

        self.templates = load_templates(cfg.caption.prompt_preset, cfg.caption.templates or None)
        self.caller = Caller(
            backend,
            options=generation_options(cfg.model, self.templates),
            system=getattr(self.templates, "system", None),
            tags=(("video_id", "live"),),
        )
        self.images = KeyframeImages(out.parent, [], cfg.model.image_max_side)
        self.images.keyframes = self.kfs  # one list: grows as keyframes are captioned
        self.chain: Chain | None = None
        #: Index of the chain's last captioned keyframe (None: the next one starts a chain).
        self.prev: int | None = self._continued_chain()
        self.summaries = Summaries(self)
        self.src = LiveSource(source, opts, self.state.last)

    def _continued_chain(self) -> int | None:
        """A growing file is read on where the last process stopped (no gap): its chain
        goes on from the last caption when no gap came after it."""
        if source_kind(self.source) != "file" or not self.captions:
            return None
        last = self.captions[-1].time or 0.0
        if any(g1 >= last for _, g1 in self.state.gaps) or not self.kfs[-1].file:
            return None
        return len(self.captions) - 1

    def emit(self, line: dict[str, Any]) -> None:
        self.log.write(line)
        if self.on_line is not None:
            self.on_line(line)

    # -- the reader thread -----------------------------------------------------------------
    def _reader(self, loop: asyncio.AbstractEventLoop, q: DropQueue[LiveKeyframe]) -> None:
        src = self.src
        selector = LiveSelector(self.cfg.keyframes, self.opts)
        try:
            for item in src.items(self.stop):
                if isinstance(item, Gap):
                    selector.restart()
                    loop.call_soon_threadsafe(self._put, q, item)
                elif isinstance(item, Ended):
                    loop.call_soon_threadsafe(self._put, q, item)
                    return
                elif (kf := selector.offer(item)) is not None:
                    loop.call_soon_threadsafe(self._put, q, kf)
        except Exception as exc:
            log.exception("live reader failed")
            loop.call_soon_threadsafe(self._put, q, Ended(f"reader failed: {exc}"))

    def _put(self, q: DropQueue[LiveKeyframe], item: Any) -> None:
        dropped = q.put(item)
        if dropped is not None:
            self._skipped(dropped, "queue_full")

    def _skipped(self, kf: LiveKeyframe, reason: str) -> None:
        c = kf.candidate
        self.report.skipped += 1
        self.emit(
            {
                "type": "skipped",
                "time": round(c.time, 3),
                "wall": iso(c.wall),
                "reason": reason,
                "similarity": None if kf.similarity is None else round(kf.similarity, 4),
            }
        )

    # -- the loop --------------------------------------------------------------------------
    async def run(self) -> LiveReport:
        loop = asyncio.get_running_loop()
        q: DropQueue[LiveKeyframe] = DropQueue(self.opts.queue, LiveKeyframe)
        self._start_line()
        reader = threading.Thread(target=self._reader, args=(loop, q), daemon=True)
        reader.start()
        timer = self._arm_stop(loop, q)
        try:
            reason = await self._consume(q)
        finally:
            self.stop.set()
            if timer is not None:
                timer.cancel()
            self._disarm_signals(loop)
        self.report.reason = reason
        await self.summaries.finish()
        self._end_line(reason)
        reader.join(timeout=2.0)
        self.log.close()
        return self.report

    def _arm_stop(
        self, loop: asyncio.AbstractEventLoop, q: DropQueue[LiveKeyframe]
    ) -> asyncio.TimerHandle | None:
        """Ctrl-C / SIGTERM and ``duration`` end the run cleanly (queued keyframes first)."""

        def request(reason: str) -> None:
            if not self.stop.is_set():
                self.stop.set()
                q.put(Ended(reason))

        if threading.current_thread() is threading.main_thread():
            for sig, why in ((signal.SIGINT, "interrupted"), (signal.SIGTERM, "terminated")):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, request, why)
        if self.opts.duration is None:
            return None
        return loop.call_later(self.opts.duration, request, f"--for {self.opts.duration:g} s")

    def _disarm_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)

    async def _consume(self, q: DropQueue[LiveKeyframe]) -> str:
        while True:
            item = await q.get()
            if isinstance(item, Ended):
                return item.reason
            if isinstance(item, Gap):
                self._gap(item)
                continue
            done = await self._caption_when_possible(item, q)
            if done is not None:
                return done
            self.summaries.maybe_roll(item.time)

    def _gap(self, gap: Gap) -> None:
        self.prev = None  # no caption across a gap: the next keyframe starts a chain
        self.report.gaps += 1
        self.emit(
            {
                "type": "gap",
                "start": round(gap.start, 3),
                "end": round(gap.end, 3),
                "wall_start": iso(gap.wall_start),
                "wall_end": iso(gap.wall_end),
                "reason": gap.reason,
            }
        )

    async def _caption_when_possible(
        self, kf: LiveKeyframe, q: DropQueue[LiveKeyframe]
    ) -> str | None:
        """Caption ``kf``; while the model fails, retry with backoff, giving it up for a newer
        keyframe that is waiting (the stream position is never lost). Returns an end reason
        when the run must stop (cost cap)."""
        for attempt in range(1 << 30):
            try:
                await self._caption(kf)
                return None
            except BudgetExceeded as exc:
                return f"cost cap: {exc.message}"
            except ContextExceeded:
                raise
            except (ModelUnavailable, DiffcapError) as exc:
                log.warning("caption at %.1f s failed: %s", kf.time, exc)
                if q.waiting() or self.stop.is_set():
                    self._skipped(kf, f"model_error: {exc.reason}")
                    return None
                await asyncio.sleep(MODEL_BACKOFF_S[min(attempt, len(MODEL_BACKOFF_S) - 1)])
        return None

    async def _caption(self, kf: LiveKeyframe) -> None:
        idx = len(self.kfs)
        self.kfs.append(Keyframe(idx=idx, time=kf.time, pts=0, file=self._save(kf, idx)))
        chain = self._chain(kf.time)
        try:
            if self.prev is None:
                text, kind = await chain.first(idx), "first"
            else:
                text = await chain.differential(idx, self.captions[self.prev].content)
                kind = "differential"
        except BaseException:
            self.kfs.pop()  # not captioned: a retry (or the next keyframe) takes its place
            self.images.release(idx)
            raise
        if self.prev is not None:
            self.images.release(self.prev)  # the window moved on: memory stays bounded
        caption = Caption(str(idx), text, time=kf.time)
        self.captions.append(caption)
        self.prev = idx
        self._caption_line(kf, caption, kind)

    def _chain(self, now: float) -> Chain:
        if self.chain is None:
            layout = resolve_pair_layout(self.cfg.caption, self.backend, self.templates)
            self.chain = Chain(
                self.kfs, self.images, self.caller, self.templates, layout, Span(0, 0, 0)
            )
        self.chain.span = Span(0.0, now, now)
        return self.chain

    def _save(self, kf: LiveKeyframe, idx: int) -> str:
        """The keyframe's JPEG in ``<run>/keyframes/``; its path relative to the records."""
        from PIL import Image

        folder = RunDir(self.run_dir).keyframes
        folder.mkdir(parents=True, exist_ok=True)
        name = keyframe_name(idx, kf.time, "jpg", width=6)
        image = cap_size(kf.candidate.image, self.cfg.keyframes.max_side)
        Image.fromarray(image).save(folder / name, "JPEG", quality=self.cfg.keyframes.jpeg_quality)
        return f"{self.run_dir.name}/keyframes/{name}"

    def _caption_line(self, kf: LiveKeyframe, caption: Caption, kind: str) -> None:
        c = kf.candidate
        delay = time.monotonic() - c.arrival
        self.report.captions += 1
        self.report.delays.append(delay)
        self.emit(
            {
                "type": "caption",
                "idx": caption.idx,
                "kind": kind,
                "time": round(c.time, 3),
                "wall": iso(c.wall),
                "wall_source": c.wall_source,
                "keyframe": self.kfs[int(caption.idx)].file,
                "why": kf.why,
                "similarity": None if kf.similarity is None else round(kf.similarity, 4),
                "content": caption.content,
                "delay_s": round(delay, 3),
            }
        )

    def _start_line(self) -> None:
        self.emit(
            {
                "type": "start",
                "live": True,
                "source": self.source,
                "kind": source_kind(self.source),
                "wall": iso(time.time()),
                "resumed": self.state.starts > 0,
                "model": self.caller.model_name,
                "interval": self.opts.interval,
                "queue": self.opts.queue,
            }
        )

    def _end_line(self, reason: str) -> None:
        stats = getattr(self.backend, "stats", None)
        self.report.paid = int(getattr(stats, "requests", 0) or 0)
        self.report.replayed = int(getattr(stats, "cached_requests", 0) or 0)
        # where the stream was last seen: a restart measures its gap from here
        seen = self.src.last
        t, wall = (seen[0], seen[1]) if seen else (self.state.last or (0.0, time.time()))
        line = {"type": "end", "reason": reason, "wall": iso(wall), "time": round(t, 3)}
        self.emit({**line, "captions": self.report.captions, "skipped": self.report.skipped})
