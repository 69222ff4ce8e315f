"""The Python API of live captioning.

    from diffcap.live import LiveOptions, caption_live
    report = caption_live("http://127.0.0.1:8000/live.m3u8", Path("live.jsonl"), cfg,
                          LiveOptions(duration=600), on_line=print)

The run directory ``<stem>.run/`` beside ``out`` holds the request cache (``run.sqlite``),
the keyframe images and ``record.json``; it is locked while a process uses it. Running again
on the same ``out`` continues the run: at the live edge after a gap marker for HLS and RTSP,
where it stopped for a growing file, with every earlier model answer replayed, never paid
again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from diffcap.captioning.budget import build_budget
from diffcap.captioning.calls import generation_options
from diffcap.config import RunConfig
from diffcap.live.options import LiveOptions
from diffcap.live.runner import LiveReport, LiveRun, run_dir_for
from diffcap.models import get_backend
from diffcap.models.cached import CachedBackend
from diffcap.store import RunDir, RunStore
from diffcap.store.lock import RunLock


def caption_live(
    source: str,
    out: Path,
    cfg: RunConfig | None = None,
    opts: LiveOptions | None = None,
    *,
    backend: Any = None,
    on_line: Callable[[dict[str, Any]], None] | None = None,
) -> LiveReport:
    """Caption ``source`` as it plays into ``out`` (JSON lines); see docs/live.md."""
    return asyncio.run(acaption_live(source, out, cfg, opts, backend=backend, on_line=on_line))


async def acaption_live(
    source: str,
    out: Path,
    cfg: RunConfig | None = None,
    opts: LiveOptions | None = None,
    *,
    backend: Any = None,
    on_line: Callable[[dict[str, Any]], None] | None = None,
) -> LiveReport:
    """:func:`caption_live` inside a running event loop."""
    cfg = cfg or RunConfig()
    opts = opts or LiveOptions(interval=cfg.keyframes.interval)
    out = Path(out)
    run_dir = run_dir_for(out)
    run_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(run_dir, "diffcap caption --live"):
        store = RunStore.open(RunDir(run_dir))
        inner = backend or get_backend(cfg.model.backend, cfg.model)
        cached = CachedBackend(inner, store.cache, max_cost_usd=cfg.engine.max_cost_usd)
        try:
            run = LiveRun(source, out, cfg, opts, cached, on_line)
            opts_ = generation_options(cfg.model, run.templates)
            run.caller.budget = await build_budget(
                inner,
                cfg.model,
                max_tokens=int(opts_.get("max_tokens", cfg.model.max_tokens)),
                probe=cached.agenerate,
            )
            return await run.run()
        finally:
            await cached.aclose()
            store.close()
