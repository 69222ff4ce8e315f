"""Layouts and encoding: sizes, gaps, labels, subsampling, never upscaling."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from diffcap.captioning.images import (
    encode_jpeg,
    fit_within,
    grid_shape,
    subsample_even,
    tile_grid,
    vertical_composite,
    vertical_strip,
)


def solid(w: int, h: int, rgb: tuple[int, int, int]) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = rgb
    return img


def test_vertical_composite_has_white_gap_and_keeps_sizes():
    top, bottom = solid(64, 40, (255, 0, 0)), solid(64, 30, (0, 0, 255))
    out = np.asarray(vertical_composite([top, bottom], gap=50))
    assert out.shape == (40 + 50 + 30, 64, 3)
    assert (out[:40] == (255, 0, 0)).all()
    assert (out[40:90] == 255).all()  # the 50-px white band of the released demo
    assert (out[90:] == (0, 0, 255)).all()


def test_vertical_composite_centres_narrower_images():
    out = np.asarray(vertical_composite([solid(100, 10, (0, 0, 0)), solid(50, 10, (0, 0, 0))]))
    assert out.shape[1] == 100
    assert (out[60:, :25] == 255).all() and (out[60:, 25:75] == 0).all()


def test_encode_jpeg_caps_longest_side_and_never_upscales():
    big = encode_jpeg(solid(2000, 1000, (10, 200, 30)), max_side=512)
    assert Image.open(io.BytesIO(big)).size == (512, 256)
    small = encode_jpeg(solid(100, 50, (10, 200, 30)), max_side=512)
    assert Image.open(io.BytesIO(small)).size == (100, 50)
    assert Image.open(io.BytesIO(small)).format == "JPEG"
    assert fit_within((300, 200), None) == (300, 200)


def test_subsample_even_keeps_ends_and_count():
    assert subsample_even(5, 10) == [0, 1, 2, 3, 4]
    picked = subsample_even(100, 7)
    assert len(picked) == 7 and picked[0] == 0 and picked[-1] == 99
    assert picked == sorted(picked)
    assert subsample_even(9, 1) == [0]


@pytest.mark.parametrize(
    ("n", "cols", "rows", "expect"),
    [
        (1, None, None, (1, 1)),
        (4, None, None, (2, 2)),
        (5, None, None, (3, 2)),
        (30, None, None, (6, 5)),
        (7, 2, None, (2, 4)),
        (7, None, 1, (7, 1)),
    ],
)
def test_grid_shape(n, cols, rows, expect):
    assert grid_shape(n, cols, rows) == expect


def test_tile_grid_geometry_gaps_and_labels():
    frames = [solid(80, 60, (0, 0, 200)) for _ in range(4)]
    unlabelled = np.asarray(tile_grid(frames, gap=10))
    assert unlabelled.shape == (60 * 2 + 10, 80 * 2 + 10, 3)
    assert (unlabelled[60:70] == 255).all() and (unlabelled[:, 80:90] == 255).all()
    labelled = np.asarray(tile_grid(frames, gap=10, labels=["#1", "#2", "#3", "#4"]))
    # the label box (black with white text) changed the top-left corner of every cell
    for y0, x0 in [(0, 0), (0, 90), (70, 0), (70, 90)]:
        assert (labelled[y0 + 2 : y0 + 14, x0 + 2 : x0 + 20] != (0, 0, 200)).any()
    assert (labelled[50:60, 60:80] == (0, 0, 200)).all()  # the rest of the cell untouched


def test_tile_grid_max_frames_and_max_size():
    frames = [solid(640, 360, (i * 5, 0, 0)) for i in range(40)]
    img = tile_grid(frames, max_frames=9, max_size=1000)
    assert max(img.size) <= 1000
    cols, rows = grid_shape(9)
    assert (cols, rows) == (3, 3)
    # 3x3 cells of 16:9 plus gaps; the cells kept the frames' aspect ratio
    cell_w = (img.size[0] - 2 * (1000 // 12)) / 3
    assert cell_w > 200


def test_vertical_strip_is_one_column():
    frames = [solid(100, 50, (0, 255, 0)) for _ in range(3)]
    img = np.asarray(vertical_strip(frames, gap=4, labels=["a", "b", "c"]))
    assert img.shape == (50 * 3 + 4 * 2, 100, 3)
    assert (img[50:54] == 0).all()  # black separator lines


def test_empty_inputs_raise():
    with pytest.raises(ValueError):
        vertical_composite([])
    with pytest.raises(ValueError):
        tile_grid([])
