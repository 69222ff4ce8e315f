"""The lazy (convert-only-what-is-needed) path picks what the eager path picks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import diffcap.keyframes.extract as extract_mod
from diffcap.config import KeyframeConfig
from diffcap.embed.weightless import WeightlessEmbedder
from diffcap.keyframes import extract_keyframes
from diffcap.keyframes.writer import ImageWriter
from diffcap.video import open_video
from diffcap.video.synth import Scene, SynthVideo, write_video


class _EagerOnly:
    """A source without ``lazy_frames_at``: forces the eager path (full RGB per candidate)."""

    def __init__(self, path, **_):
        self._src = open_video(path)

    def info(self):
        return self._src.info()

    def frames_at(self, times):
        return self._src.frames_at(times)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._src.close()


class _Counting(WeightlessEmbedder):
    def __init__(self) -> None:
        self.sizes: list[tuple[int, ...]] = []

    def embed_images(self, images):
        self.sizes += [im.shape for im in images]
        return super().embed_images(images)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> SynthVideo:
    """Fade-in from black (leading solid candidates), five shots, a fade-out."""
    scenes = [Scene(3.0, fade_in=1.0)] + [Scene(3.0) for _ in range(3)] + [Scene(3.0, fade_out=1)]
    path = tmp_path_factory.mktemp("lazy") / "shots.mp4"
    return write_video(path, scenes, size=(320, 180), fps=25, options={"bf": "3"})


# (cut candidates need a source that reports every decoded frame: the lazy one only)
@pytest.mark.parametrize(
    "cfg",
    [
        KeyframeConfig(cut_candidates=False),
        KeyframeConfig(interval=0.5, max_keyframes=4, cut_candidates=False),
    ],
)
def test_lazy_and_eager_paths_agree(shots: SynthVideo, cfg, tmp_path, monkeypatch) -> None:
    lazy_emb = _Counting()
    lazy = extract_keyframes(shots.path, cfg, embedder=lazy_emb, out_dir=tmp_path / "lazy")
    monkeypatch.setattr(extract_mod, "open_sampler", _EagerOnly)
    eager_emb = _Counting()
    eager = extract_keyframes(shots.path, cfg, embedder=eager_emb, out_dir=tmp_path / "eager")
    assert lazy.times == eager.times and [k.pts for k in lazy.keyframes] == [
        k.pts for k in eager.keyframes
    ]
    assert lazy.extra["solid_skipped"] == eager.extra["solid_skipped"] >= 1
    np.testing.assert_allclose(
        [s or 0 for s in lazy.extra["similarities"]],
        [s or 0 for s in eager.extra["similarities"]],
        atol=0.02,
    )
    # the embedder saw thumbnails on the lazy path, whole frames on the eager one
    assert set(lazy_emb.sizes) == {(256, 256, 3)}
    assert set(eager_emb.sizes) == {(180, 320, 3)}
    for a, b in zip(lazy.keyframes, eager.keyframes, strict=True):
        img_a = np.asarray(Image.open(lazy.image_path(a)), np.int16)
        img_b = np.asarray(Image.open(eager.image_path(b)), np.int16)
        assert img_a.shape == img_b.shape and np.abs(img_a - img_b).mean() < 3


def test_keyframes_are_capped_in_one_step(shots: SynthVideo, tmp_path: Path) -> None:
    kset = extract_keyframes(shots.path, KeyframeConfig(max_side=160), out_dir=tmp_path)
    sizes = {Image.open(kset.image_path(k)).size for k in kset.keyframes}
    assert sizes == {(160, 90)}
    mem = extract_keyframes(shots.path, KeyframeConfig(max_side=100))
    assert {im.shape for im in mem.images} == {(56, 100, 3)}


def test_writer_accepts_a_function_making_the_image(tmp_path: Path) -> None:
    writer = ImageWriter(tmp_path, "png", max_side=8)
    calls = []

    def make() -> np.ndarray:
        calls.append(1)
        return np.full((16, 32, 3), 120, np.uint8)

    written = writer.write(make, 0, 1.0)
    names = writer.finalize([written])
    assert calls == [1]
    assert Image.open(tmp_path / names[0]).size == (8, 4)


@pytest.mark.parametrize("fade", [False, True])
def test_probes_only_when_the_first_candidate_is_solid(tmp_path, monkeypatch, fade) -> None:
    from diffcap.video.pyav import PyAVSource

    truth = write_video(
        tmp_path / "v.mp4", [Scene(3.0, fade_in=1.0 if fade else 0.0), Scene(3.0)], size=(96, 64)
    )
    asked: list[list[float]] = []

    class Spy(PyAVSource):
        def lazy_frames_at(self, times):
            times = list(times)  # the plan is an iterator now: read it once
            asked.append(times)
            return super().lazy_frames_at(times)

    monkeypatch.setattr(extract_mod, "open_sampler", Spy)
    kset = extract_keyframes(truth.path, KeyframeConfig())
    main = asked[-1]
    probes = [t for t in main if 0.0 < t < 2.0]
    assert len(probes) == (7 if fade else 0)
    assert (kset.times[0] > 0.0) is fade
