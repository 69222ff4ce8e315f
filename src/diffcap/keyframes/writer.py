"""Keyframe images on disk: capped size, time-sortable names, no stale files.

    img = cap_size(frame.image, 1024)               # longest side <= 1024, never upscaled
    name = keyframe_name(3, 12.0, "jpg")            # "kf_0003_000012.000.jpg"
    writer = ImageWriter(out_dir / video_id, "jpg", quality=90)
    writer.write(img, provisional_idx, time)        # written at once (memory stays flat)
    writer.finalize(kept)                           # renumber/rename kept, delete the rest

Names sort by time as plain strings: the index is zero-padded (to 4 digits, more when a video
has more keyframes) and the time has 6 integer digits and millisecond precision.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

#: Matches names this module writes (old runs' files are removed before a rewrite).
NAME_RE = re.compile(r"^kf_\d+_\d+\.\d{3}\.(jpg|png)$")


def cap_size(image: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink so the longest side is at most ``max_side`` (aspect kept); never upscale."""
    h, w = image.shape[:2]
    longest = max(h, w)
    if longest <= max_side:
        return image
    scale = max_side / longest
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # reducing_gap: integer pre-shrink, then an antialiased resample (fast on 4K input)
    return np.asarray(
        Image.fromarray(np.ascontiguousarray(image)).resize(
            size, Image.Resampling.BICUBIC, reducing_gap=3.0
        )
    )


def keyframe_name(idx: int, time: float, fmt: str, width: int = 4) -> str:
    """``kf_<idx>_<seconds, 6.3>.<fmt>``, e.g. ``kf_0003_000012.000.jpg``."""
    return f"kf_{idx:0{width}d}_{max(time, 0.0):010.3f}.{fmt}"


def index_width(count: int) -> int:
    return max(4, len(str(max(count - 1, 0))))


@dataclass
class Written:
    """One image written (or being written) under a provisional name."""

    idx: int
    time: float
    path: Path
    future: Future[None] | None = field(default=None, repr=False)

    def wait(self) -> None:
        if self.future is not None:
            self.future.result()  # re-raises a failed write here, in the caller's thread
            self.future = None


class ImageWriter:
    """Writes keyframe images of one video into ``directory`` (created, old kf_* removed).

    Resizing and encoding run on one background thread (Pillow releases the GIL there), so
    they overlap with decoding; at most ``max_pending`` images wait in memory.
    """

    def __init__(
        self,
        directory: Path,
        fmt: str = "jpg",
        *,
        quality: int = 90,
        max_side: int | None = None,
        max_pending: int = 4,
    ) -> None:
        if fmt not in ("jpg", "png"):
            raise ValueError(f"image format must be jpg or png, got {fmt!r}")
        self.directory = Path(directory)
        self.fmt = fmt
        self.quality = quality
        self.max_side = max_side
        self.max_pending = max_pending
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="diffcap-kf")
        self._pending: list[Written] = []
        self.directory.mkdir(parents=True, exist_ok=True)
        self._clear_stale()

    def _clear_stale(self) -> None:
        # A rerun into the same folder must not mix old and new keyframes.
        for entry in self.directory.iterdir():
            if entry.is_file() and (NAME_RE.match(entry.name) or entry.name.startswith(".kf_")):
                entry.unlink()

    def _save(self, image: np.ndarray | Callable[[], np.ndarray], path: Path) -> None:
        if callable(image):
            image = image()  # converted here, off the caller's thread
        if self.max_side is not None:
            image = cap_size(image, self.max_side)
        pil = Image.fromarray(np.ascontiguousarray(image))
        if self.fmt == "jpg":
            pil.save(path, format="JPEG", quality=self.quality, optimize=False)
        else:
            pil.save(path, format="PNG", compress_level=3)

    def write(self, image: np.ndarray | Callable[[], np.ndarray], idx: int, time: float) -> Written:
        """Queue ``image`` (capped to ``max_side``) for saving under a provisional (hidden)
        name; :meth:`finalize` gives it its final name. ``image`` may be a function that
        makes the image: it then runs on the writer's thread."""
        self._pending = [w for w in self._pending if w.future is not None]
        while len(self._pending) >= self.max_pending:
            self._pending.pop(0).wait()
        path = self.directory / f".kf_{idx:06d}.{self.fmt}"
        written = Written(idx, time, path, self._pool.submit(self._save, image, path))
        self._pending.append(written)
        return written

    def drop(self, written: Written) -> None:
        written.wait()
        written.path.unlink(missing_ok=True)

    def close(self) -> None:
        """Wait for queued writes (raising the first failure) and stop the thread."""
        try:
            for written in self._pending:
                written.wait()
        finally:
            self._pending = []
            self._pool.shutdown(wait=True)

    def abort(self) -> None:
        """Stop after a failure: finish queued writes quietly, remove provisional files."""
        for written in self._pending:
            if written.future is not None:
                written.future.exception()  # wait; the original error is what matters
        self._pending = []
        self._pool.shutdown(wait=True)
        for entry in self.directory.glob(".kf_*"):
            entry.unlink(missing_ok=True)

    def finalize(self, kept: list[Written]) -> list[str]:
        """Rename the kept images to their final, sortable names (0..n-1); return the names."""
        self.close()
        width = index_width(len(kept))
        names = []
        for new_idx, item in enumerate(kept):
            name = keyframe_name(new_idx, item.time, self.fmt, width)
            os.replace(item.path, self.directory / name)
            item.path = self.directory / name
            names.append(name)
        return names
