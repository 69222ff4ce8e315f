"""The per-video stages of a run (see docs/runs.md, "Stage API").

A stage holds only its (picklable) config; ``setup()`` builds heavy things once per worker;
``process(batch)`` maps rows to rows, recording failures in the rows instead of raising.
Stages never import ray: ``pipeline/ray_runner.py`` adapts them to ``map_batches``.

    stages = build_stages(cfg, run_dir)
    for stage in stages:
        stage.setup()
        rows = stage.process(rows)
"""

from __future__ import annotations

import asyncio
import json
import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Literal

from diffcap.config import RunConfig
from diffcap.pipeline.filters import duration_verdict, span_duration
from diffcap.pipeline.rows import Row, fail_row, filter_row, is_pending

log = logging.getLogger(__name__)

STAGE_NAMES = ("prepare", "short_caption", "keyframes", "caption")


class Stage(ABC):
    name: ClassVar[str]
    kind: ClassVar[Literal["cpu", "model"]]

    def __init__(self, cfg: RunConfig, run_dir: str | Path) -> None:
        self.cfg = cfg
        self.run_dir = str(run_dir)
        self._ready = False

    def setup(self) -> None:
        """Heavy setup (models, clients); idempotent, called once per worker."""
        self._ready = True

    def teardown(self) -> None:  # noqa: B027 - optional hook
        """Release what setup() built; idempotent."""

    def process(self, batch: list[Row]) -> list[Row]:
        """Rows in, rows out (same order); pending rows are worked on, others pass through."""
        if not self._ready:
            self.setup()
        return [self.process_row(r) if is_pending(r) else r for r in batch]

    @abstractmethod
    def process_row(self, row: Row) -> Row:
        """Work on one pending row; record failures in it, never raise (except bugs)."""

    def __getstate__(self) -> dict[str, Any]:
        # Only config crosses process boundaries; workers call setup() themselves.
        return {"cfg": self.cfg, "run_dir": self.run_dir, "_ready": False}


class PrepareStage(Stage):
    """Download URLs, probe the video, apply the duration filter."""

    name = "prepare"
    kind = "cpu"

    def process_row(self, row: Row) -> Row:
        from diffcap.pipeline.download import download
        from diffcap.video import probe

        try:
            path = row["source"]
            if _is_url(path):
                icfg = self.cfg.input
                dest = Path(icfg.download_dir or Path(self.run_dir) / "downloads")
                path = str(
                    download(
                        path, dest, max_mb=icfg.max_download_mb, timeout_s=icfg.download_timeout_s
                    )
                )
            row["path"] = path
            info = probe(path)
            row["duration"] = span_duration(info.duration, row["start"], row["end"])
        except Exception as exc:
            return fail_row(row, self.name, exc)
        verdict = duration_verdict(row["duration"], self.cfg.filter)
        if verdict:
            return filter_row(row, self.name, "duration", verdict)
        return row


def _is_url(text: str) -> bool:
    from diffcap.pipeline.inputs import is_url

    return is_url(text)


class KeyframeStage(Stage):
    """Semantic-aware keyframes into ``RUN_DIR/keyframes/<video_id>/`` (reused when present)."""

    name = "keyframes"
    kind = "cpu"

    def setup(self) -> None:
        from diffcap.embed import get_image_embedder

        if not self._ready:
            self._embedder = get_image_embedder(self.cfg.keyframes.embedder)
        self._ready = True

    def process_row(self, row: Row) -> Row:
        from diffcap.keyframes import extract_keyframes

        out_dir = Path(self.run_dir) / "keyframes"
        done = out_dir / row["video_id"] / "keyframes.json"
        try:
            # A keyframes.json from an earlier (killed) run is reused, so the images, and
            # with them the request cache keys, stay byte-identical across resumes.
            if not _loads(done):
                kcfg = self.cfg.keyframes
                if row["start"] is not None or row["end"] is not None:
                    kcfg = kcfg.model_copy(update={"start": row["start"], "end": row["end"]})
                extract_keyframes(
                    row["path"], kcfg, self._embedder, out_dir=out_dir, video_id=row["video_id"]
                )
            row["keyframes_json"] = str(done)
        except Exception as exc:
            if type(exc).__name__ == "KeyframesSkipped":  # on purpose (too short, empty window)
                return filter_row(row, self.name, exc.reason, str(exc))  # type: ignore[attr-defined]
            return fail_row(row, self.name, exc)
        return row


def _loads(path: Path) -> bool:
    """True when ``path`` is a readable keyframes.json (a damaged one is re-extracted)."""
    from diffcap.keyframes import KeyframeSet

    if not path.is_file():
        return False
    try:
        KeyframeSet.load(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: unreadable (%s); extracting again", path, exc)
        return False
    return True


class _ModelStage(Stage):
    """Shared by the stages that call the model: a CachedBackend on the run store."""

    kind = "model"

    def setup(self) -> None:
        if self._ready:
            return
        from diffcap.models import get_backend
        from diffcap.prompts import load_templates
        from diffcap.store import CachedBackend, RunStore

        self.store = RunStore.open(Path(self.run_dir) / "run.sqlite")
        inner = get_backend(self.cfg.model.backend, self.cfg.model)
        self.backend = CachedBackend(inner, self.store, max_cost_usd=self.cfg.engine.max_cost_usd)
        self.templates = load_templates(
            self.cfg.caption.prompt_preset, overrides=self.cfg.caption.templates or None
        )
        self._ready = True

    def teardown(self) -> None:
        loop = getattr(self, "_loop", None) or asyncio.new_event_loop()
        try:
            loop.run_until_complete(self.aclose())
        finally:
            loop.close()
            self._loop = None

    async def aclose(self) -> None:
        """Async teardown, for runners that own an event loop."""
        if self._ready:
            self._ready = False
            await self.backend.aclose()
            self.store.close()

    def process(self, batch: list[Row]) -> list[Row]:
        """Sync entry (Ray): all pending rows of the batch concurrently, bounded."""
        if not self._ready:
            self.setup()

        async def run() -> list[Row]:
            limiter = asyncio.Semaphore(self.cfg.model.concurrency)
            return list(
                await asyncio.gather(
                    *(self.aprocess_row(r, limiter) if is_pending(r) else _same(r) for r in batch)
                )
            )

        # One loop per stage instance for all batches: async clients (httpx) bind to the
        # loop they first ran on, so a fresh asyncio.run() per batch would break them.
        if getattr(self, "_loop", None) is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(run())

    def process_row(self, row: Row) -> Row:
        return self.process([row])[0]

    @abstractmethod
    async def aprocess_row(self, row: Row, limiter: asyncio.Semaphore | None) -> Row: ...


async def _same(row: Row) -> Row:
    return row


class ShortCaptionStage(_ModelStage):
    """A one-sentence caption for de-dup (skipped when the manifest gave one)."""

    name = "short_caption"

    async def aprocess_row(self, row: Row, limiter: asyncio.Semaphore | None) -> Row:
        from diffcap.pipeline.shortcap import short_caption

        if row["caption"]:
            return row
        try:
            row["caption"] = await short_caption(
                row["path"],
                self.backend,
                self.templates,
                self.cfg.model,
                duration=row["duration"],
                start=row["start"] or 0.0,
                limiter=limiter,
                video_id=row["video_id"],
            )
        except Exception as exc:
            return fail_row(row, self.name, exc)
        return row


class CaptionStage(_ModelStage):
    """DiffSW (slide) or fast captioning of the saved keyframes into a record."""

    name = "caption"

    async def aprocess_row(self, row: Row, limiter: asyncio.Semaphore | None) -> Row:
        from diffcap.captioning.core import caption_keyframes
        from diffcap.keyframes import KeyframeSet

        try:
            kset = KeyframeSet.load(Path(row["keyframes_json"]))
            span = None
            if row["start"] is not None or row["end"] is not None:
                start = row["start"] or 0.0
                span = (start, start + row["duration"])
            c = self.cfg
            record = await caption_keyframes(
                kset,
                self.backend,
                c.caption,
                c.model,
                self.templates,
                c.summary,
                limiter=limiter,
                records_dir=Path(self.run_dir) / "records",
                span=span,
            )
        except Exception as exc:
            return fail_row(row, self.name, exc)
        record.video_path = row["source"]
        if span is not None:
            record.extra["span"] = {"start": span[0], "end": span[1]}
        if row["caption"]:
            record.extra["short_caption"] = row["caption"]
        row["record"] = json.dumps(record.to_json(), ensure_ascii=False)
        row["status"] = "done"
        return row


_STAGES: dict[str, type[Stage]] = {
    s.name: s for s in (PrepareStage, ShortCaptionStage, KeyframeStage, CaptionStage)
}


def build_stages(
    cfg: RunConfig, run_dir: str | Path, names: tuple[str, ...] | list[str] | None = None
) -> list[Stage]:
    """The stages of a run in order; ``short_caption`` only when de-dup is on."""
    if names is None:
        names = [n for n in STAGE_NAMES if n != "short_caption" or cfg.filter.dedup]
    return [_STAGES[n](cfg, run_dir) for n in names]
