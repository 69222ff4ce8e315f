"""The input of ShareGPT4Video-8B: one 4x4 grid image per video plus LLaVA conversation JSON.

16 frames at the midpoints of 16 equal segments of the part of the video the caption
describes — the record's span (key ``span``), else its summary's start/end, else the whole
video (see :func:`~diffcap.export.records.record_span`) — decoded from the video file, not
the keyframes, tiled row-major 4x4 with 50-px white bands between cells; the whole grid
is scaled down when its longest side exceeds 1920 px. The human turn is the model's fixed
pre-prompt (the image arranges keyframes in a grid separated by white bands) followed by the
question; the answer is the video's summary caption. A record whose video is missing or
unreadable is skipped (counted in the summary line) and the others are still written.

    diffcap export runs/demo --format grid --out train/grid.json
    # train/grid.json + train/grid_images/<video_id>.jpg
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from PIL import Image

from diffcap.captioning.images import resize_max_side, tile_grid
from diffcap.errors import DiffcapError
from diffcap.export.base import ExportOptions, ExportResult, summarized
from diffcap.export.llava import ImageWriter, conversation
from diffcap.export.records import RecordSource, clamp_window, record_span, resolve_video
from diffcap.fsutil import atomic_open
from diffcap.video import open_video

__all__ = ["GRID_MAX_SIDE", "GRID_PRE_PROMPT", "grid_image", "grid_times", "write_grid"]

#: The fixed pre-prompt of ShareGPT4Video-8B's released inference code (first sentence; the
#: release continues with an instruction to answer concisely, which a caption replaces).
GRID_PRE_PROMPT = (
    "The provided image arranges keyframes from a video in a grid view, keyframes are "
    "separated with white bands."
)
GRID_MAX_SIDE = 1920
GRID_GAP = 50


def grid_times(end: float, n: int = 16, start: float = 0.0) -> list[float]:
    """Midpoints of ``n`` equal segments of ``[start, end]`` (``grid_times(duration)``: the
    whole video)."""
    step = (end - start) / n
    return [start + (i + 0.5) * step for i in range(n)]


def grid_image(
    video: Path,
    n: int = 16,
    span: tuple[float | None, float | None] = (None, None),
    video_id: str = "",
) -> tuple[Image.Image, list[float]]:
    """The tiled grid of ``video`` (of ``span`` of it; open ends mean the video's start/end)
    and the true times of the frames it shows."""
    with open_video(video) as src:
        info = src.info()
        start, end = clamp_window(span, info.duration, video_id)
        frames = list(src.frames_at(grid_times(end, n, start)))
    cols = math.ceil(math.sqrt(n))
    grid = tile_grid([f.image for f in frames], cols=cols, gap=GRID_GAP)
    return resize_max_side(grid, GRID_MAX_SIDE), [f.time for f in frames]


def write_grid(source: RecordSource, out: Path, opts: ExportOptions) -> ExportResult:
    images = ImageWriter(out.parent / f"{out.stem}_images", out.parent, opts)
    result = ExportResult("grid", out)
    prompt = f"{GRID_PRE_PROMPT} {opts.grid_question}".strip()
    items = []
    for rec in summarized(source, result, opts):
        try:
            video = resolve_video(rec, source.base_dir)
            grid, times = grid_image(video, opts.grid_frames, record_span(rec), rec.video_id)
        except DiffcapError as exc:  # one bad video never costs the others their output
            result.fail(rec.video_id, exc)
            continue
        # Saved at full quality within the cap: the grid is the training input itself.
        path = images.save(grid, f"{rec.video_id}.jpg", None, quality=95)
        items.append(
            {
                "id": rec.video_id,
                "task": "grid",
                "video_id": rec.video_id,
                "image": path,
                "frame_times": [round(t, 6) for t in times],
                "conversations": conversation(prompt, rec.summary.content, 1),
            }
        )
    with atomic_open(out) as fh:
        json.dump(items, fh, ensure_ascii=False, indent=1)
    result.items, result.images = len(items), images.count
    return result
