"""The state of one extraction pass: admission, selection, budget and image storage.

Split out of :mod:`diffcap.keyframes.extract`, which drives it: candidates are admitted one
by one (:meth:`Pass.admit`), embedded in batches and decided in time order
(:meth:`Pass.decide`), kept keyframes stored at once (:meth:`Pass.keep`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from diffcap.config import KeyframeConfig
from diffcap.embed import ImageEmbedder
from diffcap.keyframes.select import Budget, GreedySelector, is_solid
from diffcap.keyframes.select import keep_last_frame as _keep_last
from diffcap.keyframes.writer import ImageWriter, Written, cap_size
from diffcap.timeline import Frame
from diffcap.video.lazyframe import LazyFrame

#: A batch of candidates is embedded early when its frames hold this many bytes (4K frames
#: are 25 MB each), so memory stays bounded whatever the resolution and ``batch_size``.
BATCH_BYTES = 96 * 2**20
#: A candidate waiting to be embedded: (frame, kind, what the embedder sees); kind "cut" is
#: forced (TransNetV2), "change" a cut candidate (looser bar), anything else a candidate.
_Item = tuple[Frame | LazyFrame, str, np.ndarray]
#: A decoded target or cut candidate and its kind (see :func:`diffcap.keyframes.plan`).
Target = tuple[Frame | LazyFrame, str]


def _held_bytes(frame: Frame | LazyFrame) -> int:
    """Bytes a waiting candidate stands for (its RGB size: conservative for a YUV frame)."""
    if isinstance(frame, LazyFrame):
        w, h = frame.size
        return w * h * 3
    return frame.image.nbytes


@dataclass
class _Kept:
    """A keyframe while the pass runs: its image is on disk (``written``) or in memory."""

    time: float
    pts: int
    similarity: float | None
    written: Written | None = None
    image: np.ndarray | None = None


class Pass:
    """State of one extraction: selection, budget and image storage."""

    def __init__(
        self,
        cfg: KeyframeConfig,
        embedder: ImageEmbedder,
        thresholds: tuple[float, float],
        directory: Path | None,
    ) -> None:
        self.cfg, self.embedder = cfg, embedder
        self.selector = GreedySelector(thresholds[0])
        self.cut_threshold = thresholds[1]  # the bar of a cut candidate ("change")
        self.budget: Budget[_Kept] = Budget(cfg.max_keyframes)
        self.writer = (
            ImageWriter(
                directory, cfg.image_format, quality=cfg.jpeg_quality, max_side=cfg.max_side
            )
            if directory is not None
            else None
        )
        #: (width, height) the embedder needs (None: full frames, as the paper's script did)
        self.input_size: tuple[int, int] | None = getattr(embedder, "input_size", None)
        self.last_kept: _Kept | None = None
        self.last_pts: int | None = None
        self.pending_solid: tuple[Frame | LazyFrame, np.ndarray] | None = None
        self.seen_content = False  # a non-solid candidate was admitted: stop skipping
        self.candidates = 0
        self.solid_skipped = 0
        self.serial = 0
        self.cuts: list[float] = []  # first frames of new shots (cut_keyframes)
        self.changes: list[float] = []  # cut candidates (cut_candidates)

    def pixels(self, frame: Frame | LazyFrame) -> np.ndarray:
        """What the embedder sees: a thumbnail of ``input_size`` when it declares one and the
        frame is lazy (scaled straight from YUV in swscale), else the full frame."""
        if self.input_size is not None and isinstance(frame, LazyFrame):
            return frame.resized(self.input_size)
        return frame.image

    def capped(self, frame: Frame | LazyFrame) -> np.ndarray:
        if isinstance(frame, LazyFrame):
            return frame.capped(self.cfg.max_side)  # one swscale pass, YUV -> capped RGB
        return cap_size(frame.image, self.cfg.max_side)

    def keep(self, frame: Frame | LazyFrame, sim: float | None) -> None:
        """Record a keyframe: store its image now, let the budget drop the least novel."""
        kept = _Kept(frame.time, frame.timestamp.pts, sim)
        if self.writer is not None:
            # converted and capped on the writer's thread (swscale/Pillow release the GIL)
            image = (
                (lambda f=frame: self.capped(f)) if isinstance(frame, LazyFrame) else frame.image
            )
            kept.written = self.writer.write(image, self.serial, frame.time)
        else:
            kept.image = self.capped(frame)
        self.serial += 1
        self.last_kept = kept
        evicted = self.budget.add(kept, sim)
        if evicted is not None and evicted.written is not None and self.writer is not None:
            self.writer.drop(evicted.written)

    def decide(self, items: list[_Item]) -> None:
        """Embed one batch of candidates and run the greedy rule over it in time order.

        ``items`` are (frame, kind, pixels); a "cut" frame (first after a TransNetV2 cut) is
        kept whatever its similarity, a "change" frame (cut candidate) when its similarity
        to the last kept keyframe is under ``cut_threshold``, any other under ``threshold``.
        The embedder gets ``pixels`` (see :meth:`pixels`); only the kept frames are
        converted at ``max_side``, for saving.
        """
        if not items:
            return
        vecs = self.embedder.embed_images([px for _, _, px in items])
        for (frame, kind, _), vec in zip(items, vecs, strict=True):
            if kind == "cut":
                sim = self.selector.similarity(vec)
                self.selector.keep(vec)
                self.keep(frame, sim)
                continue
            bar = self.cut_threshold if kind == "change" else None
            keep, sim = self.selector.offer(vec, bar)
            if keep:
                self.keep(frame, sim)

    def admit(self, frame: Frame | LazyFrame, kind: str = "cand") -> _Item | None:
        """(frame, kind, pixels) to embed; None for a repeat or a leading solid frame. A
        ``probe`` (extra target in the first interval) counts only while no picture was
        seen; a ``cut`` frame (first after a hard cut) is forced."""
        if kind == "probe" and self.seen_content:
            return None
        if frame.timestamp.pts == self.last_pts:
            return None  # two targets fell on one frame (VFR gap, or past the end)
        self.last_pts = frame.timestamp.pts
        self.candidates += 1
        pixels = self.pixels(frame)
        if self.cfg.skip_solid and not self.seen_content and is_solid(pixels):
            self.solid_skipped += 1
            if self.pending_solid is None:  # used if every candidate is solid
                if not isinstance(frame, LazyFrame):  # a YUV frame is small enough as it is
                    frame = Frame(cap_size(frame.image, self.cfg.max_side), frame.timestamp)
                    pixels = self.pixels(frame)
                self.pending_solid = (frame, pixels)
            return None
        self.seen_content = True
        return frame, kind, pixels

    def finish_last(self, frame: Frame | LazyFrame | None) -> None:
        """Apply the fall-backs: all-solid video, then the paper's last-frame rule."""
        if self.selector.kept == 0 and self.pending_solid is not None:
            self.decide([(self.pending_solid[0], "cand", self.pending_solid[1])])
        if frame is None or self.last_kept is None:
            return
        if not _keep_last(frame.time, self.last_kept.time, self.cfg.interval, self.selector.kept):
            return
        vec = self.embedder.embed_images([self.pixels(frame)])[0]
        sim = self.selector.similarity(vec)
        self.selector.keep(vec)
        self.keep(frame, sim)


def feed_batches(targets: Iterator[Target], run: Pass, size: int) -> Frame | LazyFrame | None:
    """Feed candidates to ``run`` in batches (by count and bytes); return the final frame."""
    batch: list[_Item] = []
    held = 0
    final: Frame | LazyFrame | None = None
    for frame, kind in targets:
        if kind == "final":
            final = frame
            break
        item = run.admit(frame, kind)
        if item is not None:
            batch.append(item)
            held += _held_bytes(item[0]) + item[2].nbytes
        if len(batch) >= size or held >= BATCH_BYTES:
            run.decide(batch)
            batch, held = [], 0
    run.decide(batch)
    return final
