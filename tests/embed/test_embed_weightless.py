"""The weightless embedder: shape/normalisation contract and its calibration claims."""

from __future__ import annotations

import numpy as np
import pytest

from diffcap.embed import get_image_embedder, image_embedder_names
from diffcap.embed.weightless import WeightlessEmbedder, rgb_to_lab
from diffcap.errors import ConfigError
from diffcap.video.synth import LAYOUTS, Scene, _Painter

EMB = WeightlessEmbedder()
THR = EMB.default_threshold


def test_contract_shape_dtype_unit_rows_any_size() -> None:
    imgs = [
        np.zeros((90, 160, 3), np.uint8),
        np.full((720, 1280, 3), 200, np.uint8),
        np.random.default_rng(0).integers(0, 255, (33, 17, 3), dtype=np.uint8),
        np.zeros((40, 40), np.uint8),  # grey 2-D input is accepted
    ]
    v = EMB.embed_images(imgs)
    assert v.shape == (4, EMB.dim) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert EMB.embed_images([]).shape == (0, EMB.dim)


def test_deterministic_and_registry() -> None:
    img = np.random.default_rng(1).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    a = get_image_embedder("weightless").embed_images([img])
    np.testing.assert_array_equal(a, EMB.embed_images([img]))
    assert {"weightless", "clip"} <= set(image_embedder_names())
    assert get_image_embedder(EMB) is EMB
    with pytest.raises(ConfigError, match="unknown image embedder"):
        get_image_embedder("nope")
    with pytest.raises(ConfigError):
        get_image_embedder("weightless:foo")


def test_lab_reference_values() -> None:
    lab = rgb_to_lab(np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0]], np.uint8))
    np.testing.assert_allclose(lab[0], [100, 0, 0], atol=0.1)
    np.testing.assert_allclose(lab[1], [0, 0, 0], atol=0.1)
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.1)


def _scenes(n: int, size: tuple[int, int]) -> list[list[np.ndarray]]:
    painter = _Painter([Scene(4.0) for _ in range(n)], *size)
    return [
        [painter.paint(t) for t in np.linspace(painter.starts[i], painter.starts[i] + 3.99, 6)]
        for i in range(n)
    ]


@pytest.mark.parametrize("size", [(320, 180), (160, 90)])
def test_moving_object_stays_scene_changes_trigger(size: tuple[int, int]) -> None:
    """Within a synthetic shot (a square crossing the frame) every pair stays above the
    default threshold; the first frames of any two different shots fall below it."""
    scenes = _scenes(len(LAYOUTS) * 2, size)
    firsts = []
    for frames in scenes:
        v = EMB.embed_images(frames)
        assert (v @ v.T).min() >= THR + 0.03
        firsts.append(v[0])
    sims = np.stack(firsts) @ np.stack(firsts).T
    np.fill_diagonal(sims, -1)
    assert sims.max() < THR - 0.05


def test_noise_and_flicker_do_not_trigger() -> None:
    rng = np.random.default_rng(3)
    for frames in _scenes(6, (320, 180)):
        base = frames[0].astype(np.float32)
        noisy = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        dimmer = np.clip(base * 0.94, 0, 255).astype(np.uint8)
        v = EMB.embed_images([frames[0], noisy, dimmer])
        assert v[0] @ v[1] > THR + 0.05
        assert v[0] @ v[2] > THR + 0.05


def test_solid_colours_are_told_apart() -> None:
    colours = [
        (20, 20, 20),
        (120, 120, 120),
        (230, 230, 230),
        (200, 30, 30),
        (30, 160, 40),
        (30, 40, 200),
    ]
    v = EMB.embed_images([np.full((90, 160, 3), c, np.uint8) for c in colours])
    sims = v @ v.T
    np.fill_diagonal(sims, -1)
    assert sims.max() < THR


def test_input_size_thumbnail_gives_the_same_vector() -> None:
    """Callers may hand over an ``input_size`` stretch instead of the whole frame."""
    from PIL import Image

    assert EMB.input_size == (256, 256)
    painter = _Painter([Scene(1.0, layout=lay) for lay in LAYOUTS], 1280, 720, detail=True)
    frames = [painter.paint(i + 0.5) for i in range(len(LAYOUTS))]
    small = [
        np.asarray(Image.fromarray(f).resize(EMB.input_size, Image.Resampling.BOX)) for f in frames
    ]
    sims = np.sum(EMB.embed_images(frames) * EMB.embed_images(small), axis=1)
    assert sims.min() > 0.995
