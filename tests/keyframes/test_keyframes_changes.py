"""Cut candidates (the dense cut signal of the sampling pass) on videos encoded here.

A colour-coded embedder gives the similarities the tests need exactly, so what is tested is
the pass: which frames the signal offers, that they meet the *last kept* keyframe, and that
their timestamps are the frames' true PTS.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from diffcap.config import KeyframeConfig
from diffcap.keyframes import extract_keyframes
from diffcap.keyframes.changes import ChangeWatch, block_means, change_signal, watched_targets
from diffcap.video.pyav import PyAVSource
from diffcap.video.synth import Scene, write_video

FPS = 25
RGB = {"red": (220, 40, 40), "blue": (40, 40, 220), "green": (40, 200, 40)}


def _unit(deg: float) -> np.ndarray:
    r = np.deg2rad(deg)
    return np.array([np.cos(r), np.sin(r), 0.0], dtype=np.float32)


class PaletteEmbedder:
    """Maps a frame to the vector of its nearest palette colour (similarities by design)."""

    model_id = "palette-test"
    default_threshold = 0.85
    default_cut_threshold = 0.95

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        names = list(self.vectors)
        out = []
        for img in images:
            mean = img.reshape(-1, 3).mean(axis=0)
            near = min(names, key=lambda n: float(np.abs(mean - RGB[n]).sum()))
            out.append(self.vectors[near])
        return np.stack(out).astype(np.float32)


def write_shots(
    path: Path,
    shots: list[tuple[str, float]],
    codec: str = "h264",
    key_cuts: bool = False,
    gop: int = 50,
) -> list[float]:
    """Solid-colour shots (with a little noise) at 25 fps; returns each shot's start (s).
    Codec keyframes every ``gop`` frames; with ``key_cuts`` also on every shot's first frame
    (as encoders place them at scene changes)."""
    rng = np.random.default_rng(0)
    starts, frame = [], 0
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        stream.gop_size = gop  # cuts fall between codec keyframes, not on them
        if key_cuts:
            stream.options = {"forced-idr": "1"}  # a forced I-frame is an IDR (indexed)
        for name, seconds in shots:
            starts.append(float(Fraction(frame, FPS)))
            for i in range(round(seconds * FPS)):
                noise = rng.integers(-6, 7, (96, 160, 3))
                img = np.clip(np.array(RGB[name]) + noise, 0, 255).astype(np.uint8)
                vf = av.VideoFrame.from_ndarray(img, format="rgb24")
                vf.pts = frame
                if key_cuts and i == 0:
                    vf.pict_type = av.video.frame.PictureType.I
                frame += 1
                for packet in stream.encode(vf):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return starts


def _cfg(**kw: object) -> KeyframeConfig:
    """Short shots (< interval) may lie in a stretch the default pass skips: scan fully."""
    kw = {"skip_solid": False, "cut_scan_full": True, **kw}
    return KeyframeConfig(**kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("codec", ["h264", "mpeg4"])
def test_a_shot_between_two_candidates_gets_its_first_frame(tmp_path: Path, codec: str) -> None:
    # candidates at 0, 2, 4 s never land in the blue shot [2.4, 3.2)
    path = tmp_path / f"abc.{'mp4' if codec == 'h264' else 'avi'}"
    starts = write_shots(path, [("red", 2.4), ("blue", 0.8), ("green", 2.8)], codec)
    emb = PaletteEmbedder({"red": _unit(0), "blue": _unit(90), "green": _unit(180)})
    without = extract_keyframes(path, _cfg(cut_candidates=False), embedder=emb)
    assert not any(starts[1] <= t < starts[2] for t in without.times)
    kset = extract_keyframes(path, _cfg(), embedder=emb)
    # exactly the shots' first frames (PTS seconds 60/25 and 80/25, compared as floats)
    assert kset.times[:3] == [0.0, starts[1], starts[2]]
    assert kset.extra["cut_candidates"] == [starts[1], starts[2]]


def test_a_long_shot_starting_in_a_skipped_stretch_is_found_where_the_reader_lands(
    tmp_path: Path,
) -> None:
    """Default pass, codec keyframes every ~5 s: from 4.0 to 6.0 s the reader seeks to the
    keyframe at 4.96. The blue shot [4.4, 7.0) starts in the skipped stretch; going back to
    decode it would mean decoding from 0.0 (6 s, over THROUGH_MAX), so the stretch stays
    skipped, and the landing frame 4.96, which differs from the frame before the jump (4.0,
    red), is a cut candidate, kept under the looser bar (0.90 < 0.95), while plain
    candidates (6.0 s: 0.90 >= 0.85) would not keep it."""
    path = tmp_path / "long.mp4"
    starts = write_shots(path, [("red", 4.4), ("blue", 2.6), ("green", 3.0)], gop=125)
    emb = PaletteEmbedder({"red": _unit(0), "blue": _unit(25.84), "green": _unit(120)})
    without = extract_keyframes(path, _cfg(cut_scan_full=False, cut_candidates=False), emb)
    assert not any(starts[1] <= t < starts[2] for t in without.times)
    kset = extract_keyframes(path, _cfg(cut_scan_full=False), embedder=emb)
    found = [t for t in kset.times if starts[1] <= t < starts[2]]
    assert found == [4.96] and found[0] in kset.extra["cut_candidates"]
    assert kset.extra["similarities"][1] == pytest.approx(0.90, abs=1e-3)


def test_a_long_shot_starting_in_a_short_skipped_stretch_is_found_at_its_first_frame(
    tmp_path: Path,
) -> None:
    """The same with codec keyframes every 2 s (1.96, 3.92): the landing frame differs from
    the frame before the jump, going back costs 2 s of decoding, so the reader decodes the
    stretch and the blue shot [2.4, 5.0) is found at its first frame."""
    path = tmp_path / "long.mp4"
    starts = write_shots(path, [("red", 2.4), ("blue", 2.6), ("green", 3.0)])
    emb = PaletteEmbedder({"red": _unit(0), "blue": _unit(25.84), "green": _unit(120)})
    kset = extract_keyframes(path, _cfg(cut_scan_full=False), embedder=emb)
    found = [t for t in kset.times if starts[1] <= t < starts[2]]
    assert found == [starts[1]] and found[0] in kset.extra["cut_candidates"]


def test_codec_keyframes_in_a_skipped_stretch_are_cut_candidates(tmp_path: Path) -> None:
    """Default pass: green [0, 0.8) red [0.8, 2.4) blue [2.4, 3.2) red [3.2, 6), codec
    keyframes on every cut. The cut at 0.8 s, decoded frame after frame, shows that this
    encoder starts shots on keyframes. Going from 2.0 to 4.0 the reader then jumps to the
    keyframe at 3.2, first decoding the keyframe at 2.4 alone, and never decodes the blue
    shot through: blue is kept (vs red), and the second red shot too, because it meets the
    last kept keyframe (blue), not the first red one (identical)."""
    path = tmp_path / "keys.mp4"
    shots = [("green", 0.8), ("red", 1.6), ("blue", 0.8), ("red", 2.8)]
    starts = write_shots(path, shots, key_cuts=True)
    with av.open(str(path)) as c:
        keys = [float(f.time) for f in c.decode(video=0) if f.key_frame]
    assert set(starts) <= set(keys)
    emb = PaletteEmbedder({"red": _unit(0), "blue": _unit(90), "green": _unit(180)})
    kset = extract_keyframes(path, _cfg(cut_scan_full=False), embedder=emb)
    assert kset.times[:4] == starts
    assert kset.extra["cut_candidates"] == starts[1:]
    assert kset.extra["similarities"][3] == pytest.approx(0.0, abs=1e-6)  # red vs blue
    with PyAVSource(path, threads="SLICE") as src:
        watch = ChangeWatch(src)
        seen: list[float] = []
        _spied_targets(src, [0.0, 2.0, 4.0], watch, seen)
    assert watch.keys_mark_cuts
    assert [t for t in seen if starts[2] < t < starts[3]] == []  # blue: its first frame only


def _spied_targets(
    src: PyAVSource, times: list[float], watch: ChangeWatch, seen: list[float]
) -> list[tuple[object, str]]:
    """watched_targets, recording the time of every frame the watch is shown."""

    class Spy(ChangeWatch):
        def __call__(self, frame: av.VideoFrame) -> None:
            seen.append(src.lazy(frame).time)
            super().__call__(frame)

    watch.__class__ = Spy  # the same watch object: the reader reads its counters
    return list(watched_targets(src, times, ["cand"] * len(times), watch))


def test_a_short_shot_hidden_in_a_skipped_stretch_is_looked_into(tmp_path: Path) -> None:
    """Default pass, codec keyframes every 2 s only (0, 2, 4: no keyframe on the cuts): going
    from 2.0 to 4.0 the reader would land on 4.0 (green) and never see the blue shot
    [2.4, 3.2). The landing frame differs from the frame before the jump and this encoder
    has not shown that it starts shots on keyframes, so the reader goes back and decodes
    the stretch: blue is found at its first frame."""
    path = tmp_path / "hidden.mp4"
    starts = write_shots(path, [("red", 2.4), ("blue", 0.8), ("green", 2.8)])
    emb = PaletteEmbedder({"red": _unit(0), "blue": _unit(90), "green": _unit(180)})
    kset = extract_keyframes(path, _cfg(cut_scan_full=False), embedder=emb)
    assert kset.times[:3] == [0.0, starts[1], starts[2]]
    with PyAVSource(path, threads="SLICE") as src:
        seen: list[float] = []
        watch = ChangeWatch(src)
        _spied_targets(src, [0.0, 2.0, 4.0], watch, seen)
    assert starts[1] in seen and not watch.keys_mark_cuts
    assert watch.cuts_off_keys >= 1


def test_cut_candidates_meet_the_last_kept_keyframe(tmp_path: Path) -> None:
    """red -> blue -> red: the second red shot is kept because it is compared with the last
    kept keyframe (blue), not with keyframe 0 (red, identical)."""
    path = tmp_path / "aba.mp4"
    starts = write_shots(path, [("red", 3.0), ("blue", 0.6), ("red", 2.4)])
    emb = PaletteEmbedder({"red": _unit(0), "blue": _unit(90)})
    kset = extract_keyframes(path, _cfg(), embedder=emb)
    assert kset.times[:3] == [0.0, starts[1], starts[2]]
    assert kset.extra["similarities"][1:3] == [pytest.approx(0.0, abs=1e-6)] * 2


def test_a_flagged_frame_like_the_last_keyframe_is_not_kept(tmp_path: Path) -> None:
    """Pixels change abruptly twice (red -> blue -> green) but the embedder calls blue 0.97
    and green 0.96 like red (and blue vs green only 0.87): both cut candidates are offered,
    and both are dropped, because each meets the last *kept* keyframe (red); a rule against
    the previous candidate would have kept green."""
    path = tmp_path / "jump.mp4"
    starts = write_shots(path, [("red", 2.4), ("blue", 0.8), ("green", 2.8)])
    vectors = {"red": _unit(0), "blue": _unit(14), "green": _unit(-16)}
    kset = extract_keyframes(path, _cfg(), embedder=PaletteEmbedder(vectors))
    assert kset.extra["cut_candidates"] == [starts[1], starts[2]]
    assert kset.times[0] == 0.0
    assert not any(0.0 < t < 5.9 for t in kset.times)  # then only the last frame (6 s later)


def test_static_footage_stays_sparse(tmp_path: Path) -> None:
    # 40 s of one textured shot with a square crossing it: first and last frame only,
    # i.e. <= 1 keyframe per 20 s, with the real weightless embedder
    video = write_video(
        tmp_path / "static.mp4", [Scene(40.0, moving=True)], size=(192, 108), fps=10, detail=True
    )
    kset = extract_keyframes(video.path, KeyframeConfig())
    assert len(kset.keyframes) <= 40.0 / 20.0
    assert len(kset.extra["cut_candidates"]) <= 1


def test_signal_sees_every_decoded_frame_once_in_order(tmp_path: Path) -> None:
    path = tmp_path / "abc.mp4"
    write_shots(path, [("red", 1.0), ("blue", 1.0)])
    with PyAVSource(path, threads="SLICE") as src:
        seen: list[float] = []
        watch = ChangeWatch(src)

        def spy(frame: av.VideoFrame) -> None:
            seen.append(src.lazy(frame).time)
            watch(frame)

        src.watch(spy)
        list(src.lazy_frames_at([0.0, 1.5, 5.0]))
    assert seen == sorted(seen) and seen[0] == 0.0  # the first frame is seen too
    assert [f.time for f in watch.drain()] == [1.0]


def test_change_signal_scale() -> None:
    red = np.full((36, 64, 3), RGB["red"], np.uint8)
    blue = np.full((36, 64, 3), RGB["blue"], np.uint8)
    assert change_signal(block_means(red), block_means(red)) == 0.0
    assert change_signal(block_means(red), block_means(blue)) == pytest.approx(360 / 3 / 255)


def test_cut_threshold_defaults_and_floor() -> None:
    from diffcap.embed.weightless import WeightlessEmbedder
    from diffcap.keyframes.extract import thresholds

    weightless = WeightlessEmbedder()
    assert thresholds(KeyframeConfig(), weightless) == (0.85, 0.95)
    assert thresholds(KeyframeConfig(cut_threshold=0.9), weightless) == (0.85, 0.9)
    # never stricter than the candidates' own bar
    assert thresholds(KeyframeConfig(threshold=0.97), weightless) == (0.97, 0.97)

    class Plain:  # an embedder that declares no cut bar: cut candidates use its threshold
        model_id, default_threshold = "plain", 0.93

    assert thresholds(KeyframeConfig(), Plain()) == (0.93, 0.93)  # type: ignore[arg-type]


def test_a_late_window_start_is_still_reached_by_a_seek(tmp_path: Path, monkeypatch) -> None:
    """Cut candidates do not turn the jump to ``--start`` into decoding everything before."""
    import diffcap.keyframes.extract as extract_mod

    path = tmp_path / "long.mp4"
    write_shots(path, [("red", 20.0), ("blue", 4.0)])  # codec keyframes every 2 s
    readers: list[PyAVSource] = []
    real = extract_mod.open_sampler

    def spy(p, **kw):
        readers.append(real(p, **kw))
        return readers[-1]

    monkeypatch.setattr(extract_mod, "open_sampler", spy)
    emb = PaletteEmbedder({"red": _unit(0), "blue": _unit(90)})
    kset = extract_keyframes(path, _cfg(cut_scan_full=False, start=18.0), embedder=emb)
    assert kset.times[:2] == [18.0, 20.0]  # the cut to blue, exactly
    assert readers[-1].frames_decoded < 6.0 * FPS  # not the 18 s before the window
