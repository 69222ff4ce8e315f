"""Caption many videos: keyframes extracted in a worker pool while earlier videos are being
captioned, at most ``concurrency`` requests in flight overall, each video's chain in order,
every record appended (and flushed) as soon as its video completes, failures written aside.

    runner = CaptionRunner(cfg, backend, out=Path("captions.jsonl"), templates=templates)
    result = asyncio.run(runner.run([Path("a.mp4"), Path("b.mp4")]))
    result.videos_ok, result.failures, result.usage.requests

:func:`caption_video` is the per-video unit (extract, then caption) that ``diffcap run`` reuses.
Any :class:`~diffcap.models.base.Backend` works, including a caching wrapper.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffcap.captioning.core import caption_keyframes
from diffcap.config import RunConfig
from diffcap.errors import DiffcapError, ModelUnavailable
from diffcap.models.base import Backend
from diffcap.timeline import Usage, VideoRecord

log = logging.getLogger(__name__)


class VideoFailed(DiffcapError):
    """One video failed at ``stage`` ("keyframes" or "caption"); ``cause`` is the error."""

    reason = "video_failed"

    def __init__(
        self,
        stage: str,
        cause: BaseException,
        video_id: str,
        path: str,
        usage: Usage | None = None,
    ) -> None:
        self.stage = stage
        #: What the video's requests cost before it failed.
        self.usage = usage or Usage()
        self.cause = cause
        self.video_id = video_id
        self.path = path
        self.reason = getattr(cause, "reason", type(cause).__name__)
        super().__init__(f"video {video_id!r}: {stage} failed: {cause}")

    def to_json(self) -> dict[str, Any]:
        return {
            "video_id": self.video_id,
            "video_path": self.path,
            "stage": self.stage,
            "reason": self.reason,
            "error": str(self.cause),
            "usage": self.usage.to_json(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }


def sidecar_paths(out: Path) -> tuple[Path, Path]:
    """``captions.jsonl`` -> (``captions.keyframes/``, ``captions.failures.jsonl``)."""
    stem = out.name[: -len(out.suffix)] if out.suffix else out.name
    return out.parent / f"{stem}.keyframes", out.parent / f"{stem}.failures.jsonl"


async def extract_in_pool(
    path: Path,
    video_id: str,
    cfg: RunConfig,
    keyframes_dir: Path,
    embedder: Any = None,
    executor: Executor | None = None,
) -> Any:
    """Run keyframe extraction in ``executor`` (decoding overlaps the event loop's requests)."""
    from diffcap.keyframes import extract_keyframes

    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        executor,
        lambda: extract_keyframes(path, cfg.keyframes, embedder, keyframes_dir, video_id),
    )


async def caption_video(
    path: Path,
    video_id: str,
    *,
    backend: Backend,
    cfg: RunConfig,
    templates: Any,
    keyframes_dir: Path,
    records_dir: Path,
    embedder: Any = None,
    executor: Executor | None = None,
    limiter: asyncio.Semaphore | None = None,
    kset: Any = None,
    usage: Usage | None = None,
) -> VideoRecord:
    """Extract keyframes (unless ``kset`` is given) and caption them.

    Raises :class:`VideoFailed` naming the stage; a :class:`ModelUnavailable` passes through
    unwrapped because it concerns the whole run, not this video. ``usage`` accumulates the
    video's requests as they complete (also when it fails).
    """
    usage = usage if usage is not None else Usage()
    if kset is None:
        try:
            kset = await extract_in_pool(path, video_id, cfg, keyframes_dir, embedder, executor)
        except Exception as exc:
            raise VideoFailed("keyframes", exc, video_id, str(path)) from exc
    try:
        return await caption_keyframes(
            kset,
            backend,
            cfg.caption,
            cfg.model,
            templates,
            cfg.summary,
            limiter=limiter,
            records_dir=records_dir,
            usage=usage,
        )
    except ModelUnavailable:
        raise
    except Exception as exc:
        raise VideoFailed("caption", exc, video_id, str(path), usage) from exc


@dataclass
class RunResult:
    videos: int = 0
    videos_ok: int = 0
    keyframes: int = 0
    extracted_only: int = 0
    failures: list[VideoFailed] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0
    unavailable: ModelUnavailable | None = None

    def summary_line(self) -> str:
        u = self.usage
        return (
            f"{self.videos_ok}/{self.videos} videos captioned, {self.keyframes} keyframes, "
            f"{u.requests} requests, {u.prompt_tokens}+{u.completion_tokens} tokens, "
            f"est. ${u.cost_usd:.4f}, {len(self.failures)} failed, {self.seconds:.1f} s"
        )


class CaptionRunner:
    """Runs :func:`caption_video` over many videos and writes the records file.

    ``backend=None`` extracts keyframes only (the CLI's no-model path). When the backend
    raises :class:`ModelUnavailable`, captioning stops for the whole run (every later
    request would fail the same way) but keyframes are still extracted for every video.
    """

    def __init__(
        self,
        cfg: RunConfig,
        backend: Backend | None,
        out: Path,
        templates: Any,
        *,
        embedder: Any = None,
        workers: int | None = None,
        progress: bool = True,
    ) -> None:
        self.cfg = cfg
        self.backend = backend
        self.out = Path(out)
        self.keyframes_dir, self.failures_path = sidecar_paths(self.out)
        self.templates = templates
        self.embedder = embedder
        self.workers = workers or cfg.engine.workers
        self.progress = progress
        self.result = RunResult()

    async def run(
        self,
        paths: Sequence[Path],
        video_ids: Sequence[str] | None = None,
        keyframe_sets: Sequence[Any] | None = None,
    ) -> RunResult:
        """Caption ``paths`` (ids from ``make_video_ids`` unless given). With
        ``keyframe_sets`` (one per path, already extracted) no video is decoded."""
        from tqdm.auto import tqdm

        t0 = time.perf_counter()
        paths = [Path(p) for p in paths]
        if video_ids is None:
            from diffcap.keyframes import make_video_ids

            video_ids = make_video_ids(paths)
        ksets = list(keyframe_sets) if keyframe_sets is not None else [None] * len(paths)
        if not len(paths) == len(video_ids) == len(ksets):
            raise ValueError("paths, video_ids and keyframe_sets must have the same length")
        self._prepare_outputs()
        if self.embedder is None and keyframe_sets is None:
            self.embedder = _image_embedder(self.cfg.keyframes.embedder)
        limiter = asyncio.Semaphore(self.cfg.model.concurrency)
        queue: asyncio.Queue[tuple[Path, str, Any]] = asyncio.Queue()
        for item in zip(paths, video_ids, ksets, strict=True):
            queue.put_nowait(item)
        # Enough videos in progress to keep every request slot busy while others decode;
        # few enough that keyframes on disk wait for captioning only briefly.
        n_active = max(1, min(len(paths), 2 * self.cfg.model.concurrency + self.workers))
        self.result = RunResult(videos=len(paths))
        with (
            ThreadPoolExecutor(self.workers, thread_name_prefix="diffcap-kf") as executor,
            open(self.out, "a", encoding="utf-8") as records,
            tqdm(total=len(paths), unit="video", disable=not self.progress) as bar,
        ):

            async def worker() -> None:
                while not queue.empty():
                    path, video_id, kset = queue.get_nowait()
                    await self._one(path, video_id, kset, executor, limiter, records)
                    bar.update(1)

            await asyncio.gather(*(worker() for _ in range(n_active)))
        self.result.seconds = time.perf_counter() - t0
        return self.result

    def _prepare_outputs(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text("", encoding="utf-8")  # a run rewrites its records file
        if self.failures_path.exists():
            self.failures_path.unlink()  # stale failures of an earlier run would mislead

    async def _one(
        self,
        path: Path,
        video_id: str,
        kset: Any,
        executor: Executor,
        limiter: asyncio.Semaphore,
        records: Any,
    ) -> None:
        res = self.result
        try:
            try:
                if kset is None:
                    kset = await extract_in_pool(
                        path, video_id, self.cfg, self.keyframes_dir, self.embedder, executor
                    )
            except Exception as exc:
                raise VideoFailed("keyframes", exc, video_id, str(path)) from exc
            res.keyframes += len(kset.keyframes)
            if self.backend is None or res.unavailable is not None:
                res.extracted_only += 1
                return
            record = await caption_video(
                path,
                video_id,
                backend=self.backend,
                cfg=self.cfg,
                templates=self.templates,
                keyframes_dir=self.keyframes_dir,
                records_dir=self.out.parent,
                limiter=limiter,
                kset=kset,
            )
        except VideoFailed as failed:
            log.warning("%s", failed)
            res.failures.append(failed)
            res.usage.add(failed.usage)  # tokens paid for a failed video still count
            with open(self.failures_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(failed.to_json(), ensure_ascii=False) + "\n")
            return
        except ModelUnavailable as exc:
            res.unavailable = res.unavailable or exc
            res.extracted_only += 1
            return
        records.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
        records.flush()
        res.videos_ok += 1
        res.usage.add(record.usage)


def _image_embedder(name: str) -> Any:
    """One embedder shared by every extraction thread (a CLIP model loads once)."""
    try:
        from diffcap.embed import get_image_embedder
    except ImportError:
        return None
    return get_image_embedder(name)
