"""Image layouts and encoding for captioning requests.

One-image models get frame pairs as a vertical composite with a 50-px white gap (as in the
released ShareCaptioner-Video demo); fast captioning tiles all keyframes into one labelled grid
or a vertical strip. Encoding never upscales.

    from diffcap.captioning.images import encode_jpeg, tile_grid, vertical_composite
    pair = vertical_composite([prev_rgb, cur_rgb])             # H1 + 50 + H2 tall, white gap
    grid = tile_grid(frames, labels=["#0 00:00.00", "#1 00:02.00"], max_size=2048)
    data = encode_jpeg(grid, max_side=1024, quality=90)        # JPEG bytes
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ImageLike = np.ndarray | Image.Image

WHITE = (255, 255, 255)
#: Separator gap of the released demo and of the ShareGPT4Video-8B grid.
DEFAULT_GAP = 50


def to_pil(image: ImageLike) -> Image.Image:
    """An RGB PIL image from an HxWx3 uint8 array (or any PIL image)."""
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return Image.fromarray(arr[..., :3], "RGB")


def fit_within(size: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    """``(w, h)`` scaled down so the longest side is at most ``max_side``; never scaled up."""
    w, h = size
    if not max_side or max(w, h) <= max_side:
        return w, h
    scale = max_side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def resize_max_side(image: ImageLike, max_side: int | None) -> Image.Image:
    img = to_pil(image)
    new = fit_within(img.size, max_side)
    return img if new == img.size else img.resize(new, Image.Resampling.LANCZOS)


def encode_jpeg(image: ImageLike, max_side: int | None = None, quality: int = 90) -> bytes:
    """JPEG bytes of ``image``, its longest side capped at ``max_side`` (never upscaled)."""
    img = resize_max_side(image, max_side)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality, optimize=False)
    return buf.getvalue()


def vertical_composite(
    images: Sequence[ImageLike], gap: int = DEFAULT_GAP, fill: tuple[int, int, int] = WHITE
) -> Image.Image:
    """Stack images top to bottom with ``gap`` px of ``fill`` between them.

    Images narrower than the widest are centred; sizes are kept (no resizing), so the model
    sees each frame at the resolution it was saved at.
    """
    if not images:
        raise ValueError("vertical_composite needs at least one image")
    pils = [to_pil(i) for i in images]
    width = max(p.width for p in pils)
    height = sum(p.height for p in pils) + gap * (len(pils) - 1)
    canvas = Image.new("RGB", (width, height), fill)
    y = 0
    for p in pils:
        canvas.paste(p, ((width - p.width) // 2, y))
        y += p.height + gap
    return canvas


def subsample_even(n: int, max_items: int | None) -> list[int]:
    """Indices of ``max_items`` evenly spread items of ``n`` (first and last kept)."""
    if not max_items or n <= max_items:
        return list(range(n))
    if max_items == 1:
        return [0]
    step = (n - 1) / (max_items - 1)
    return sorted({round(i * step) for i in range(max_items)})


def grid_shape(n: int, cols: int | None = None, rows: int | None = None) -> tuple[int, int]:
    """``(cols, rows)`` for ``n`` cells: near-square by default, or fixed cols or rows."""
    if n < 1:
        raise ValueError("grid_shape needs at least one cell")
    if cols:
        return cols, math.ceil(n / cols)
    if rows:
        return math.ceil(n / rows), rows
    cols = math.ceil(math.sqrt(n))
    return cols, math.ceil(n / cols)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def _draw_label(canvas: Image.Image, xy: tuple[int, int], text: str, cell_h: int) -> None:
    """A white-on-black label box at the top-left corner of a cell (legible on any frame)."""
    size = max(10, min(48, cell_h // 12))
    draw = ImageDraw.Draw(canvas)
    font = _font(size)
    left, top, right, bottom = draw.textbbox(xy, text, font=font)
    pad = max(2, size // 5)
    draw.rectangle((left - pad, top - pad, right + pad, bottom + pad), fill=(0, 0, 0))
    draw.text(xy, text, fill=WHITE, font=font)


def tile_grid(
    images: Sequence[ImageLike],
    *,
    cols: int | None = None,
    rows: int | None = None,
    labels: Sequence[str] | None = None,
    gap: int = DEFAULT_GAP,
    max_frames: int | None = None,
    max_size: int | None = None,
    fill: tuple[int, int, int] = WHITE,
) -> Image.Image:
    """Tile images row-major into one grid separated by ``gap``-px bands of ``fill``.

    Cells take the first image's aspect ratio (others are letterboxed into them). With
    ``max_frames`` the images are evenly subsampled first (labels follow them). With
    ``max_size`` the cells shrink so the whole grid's longest side fits; gaps keep their size
    unless they alone would exceed it.
    """
    if not images:
        raise ValueError("tile_grid needs at least one image")
    keep = subsample_even(len(images), max_frames)
    pils = [to_pil(images[i]) for i in keep]
    texts = [labels[i] for i in keep] if labels is not None else None
    ncols, nrows = grid_shape(len(pils), cols, rows)
    cell_w, cell_h = pils[0].size
    if max_size:
        gap = min(gap, max(0, max_size // (4 * max(ncols, nrows))))
        scale = min(
            1.0,
            (max_size - gap * (ncols - 1)) / (cell_w * ncols),
            (max_size - gap * (nrows - 1)) / (cell_h * nrows),
        )
        cell_w, cell_h = max(1, int(cell_w * scale)), max(1, int(cell_h * scale))
    width = ncols * cell_w + gap * (ncols - 1)
    height = nrows * cell_h + gap * (nrows - 1)
    canvas = Image.new("RGB", (width, height), fill)
    for i, img in enumerate(pils):
        r, c = divmod(i, ncols)
        x0, y0 = c * (cell_w + gap), r * (cell_h + gap)
        fitted = img.copy()
        fitted.thumbnail((cell_w, cell_h), Image.Resampling.LANCZOS)
        canvas.paste(
            fitted, (x0 + (cell_w - fitted.width) // 2, y0 + (cell_h - fitted.height) // 2)
        )
        if texts:
            _draw_label(canvas, (x0 + 6, y0 + 6), texts[i], cell_h)
    return canvas


def vertical_strip(
    images: Sequence[ImageLike],
    *,
    labels: Sequence[str] | None = None,
    gap: int = 8,
    max_frames: int | None = None,
    max_size: int | None = None,
    separator: tuple[int, int, int] = (0, 0, 0),
) -> Image.Image:
    """Frames stacked top to bottom with an index label and a separator line between them
    (the released demo's fast-captioning layout). A one-column :func:`tile_grid`."""
    return tile_grid(
        images,
        cols=1,
        labels=labels,
        gap=gap,
        max_frames=max_frames,
        max_size=max_size,
        fill=separator,
    )
