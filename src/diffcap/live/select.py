"""Semantic-aware keyframes chosen on the fly, by the rule of :mod:`diffcap.keyframes`.

A candidate becomes a keyframe when its embedding's cosine similarity to the **last kept**
keyframe is under the threshold (:class:`~diffcap.keyframes.select.GreedySelector`, the same
embedder and thresholds as ``diffcap keyframes``). A stream has no last frame, so two rules
replace the paper's last-frame rule: the first non-solid candidate after the start or after a
gap is kept (it starts a new chain), and a keyframe is forced when none was kept for
``max_keyframe_gap_s`` (a still scene still reports that nothing changed).

    sel = LiveSelector(KeyframeConfig(), LiveOptions())
    kf = sel.offer(candidate)          # a LiveKeyframe, or None
    sel.restart()                       # after a gap
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from diffcap.config import KeyframeConfig
from diffcap.embed import ImageEmbedder, get_image_embedder
from diffcap.keyframes.extract import thresholds
from diffcap.keyframes.select import GreedySelector, is_solid
from diffcap.live.options import Candidate, LiveOptions


@dataclass
class LiveKeyframe:
    """A kept candidate on its way to the model."""

    candidate: Candidate
    similarity: float | None
    #: Why it was kept: "new" (under the threshold), "start" (first of a chain), "still"
    #: (forced after max_keyframe_gap_s).
    why: str
    #: Candidates seen since the previous keyframe (their count).
    seen: int = 0

    @property
    def time(self) -> float:
        return self.candidate.time


class LiveSelector:
    def __init__(
        self,
        cfg: KeyframeConfig,
        opts: LiveOptions,
        embedder: ImageEmbedder | None = None,
    ) -> None:
        self.cfg, self.opts = cfg, opts
        self.embedder = embedder or get_image_embedder(cfg.embedder, batch_size=1)
        self.threshold = thresholds(cfg, self.embedder)[0]
        self.input_size: tuple[int, int] | None = getattr(self.embedder, "input_size", None)
        self.restart()
        self.candidates = 0

    def restart(self) -> None:
        """Forget the reference keyframe: the next content frame starts a new chain."""
        self.selector = GreedySelector(self.threshold)
        self.last_time: float | None = None
        self.since = 0

    def _pixels(self, image: np.ndarray) -> np.ndarray:
        if self.input_size is None:
            return image
        thumb = Image.fromarray(image).resize(self.input_size, Image.Resampling.BILINEAR)
        return np.asarray(thumb)

    def offer(self, cand: Candidate) -> LiveKeyframe | None:
        """Decide one candidate (see the module docstring)."""
        self.candidates += 1
        self.since += 1
        pixels = self._pixels(cand.image)
        if self.last_time is None:
            waited = self.since * self.opts.interval
            if self.cfg.skip_solid and is_solid(pixels) and waited < self.opts.max_keyframe_gap_s:
                return None
            return self._keep(cand, pixels, None, "start")
        vec = self.embedder.embed_images([pixels])[0]
        keep, sim = self.selector.offer(vec)
        if keep:
            return self._kept(cand, sim, "new")
        if cand.time - self.last_time >= self.opts.max_keyframe_gap_s - 1e-6:
            self.selector.keep(vec)
            return self._kept(cand, sim, "still")
        return None

    def _keep(
        self, cand: Candidate, pixels: np.ndarray, sim: float | None, why: str
    ) -> LiveKeyframe:
        self.selector.keep(self.embedder.embed_images([pixels])[0])
        return self._kept(cand, sim, why)

    def _kept(self, cand: Candidate, sim: float | None, why: str) -> LiveKeyframe:
        kf = LiveKeyframe(cand, sim, why, self.since)
        self.last_time, self.since = cand.time, 0
        return kf
