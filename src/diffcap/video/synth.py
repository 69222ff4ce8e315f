"""Deterministic synthetic videos for tests, benchmarks and ``diffcap sample``.

Every video is a list of :class:`Scene` s, each with its own hue and layout plus a moving
square (so frames within a scene differ a little and scenes differ a lot). The writers return
the ground truth (scene start times, exact frame times) so tests can check what they decode.

    from fractions import Fraction
    from diffcap.video.synth import Scene, write_video

    truth = write_video("demo.mp4", [Scene(2.0), Scene(3.0, fade_out=0.5)],
                        codec="h264", size=(320, 180), fps=Fraction(30000, 1001))
    truth.scene_starts        # [0.0, 2.002]  (first frame of each scene, exact PTS seconds)
    truth.frame_times[:2]     # [Fraction(0, 1), Fraction(1001, 30000)]

Everything is written in-process with PyAV (no ffmpeg binary needed).
"""

from __future__ import annotations

import colorsys
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

log = logging.getLogger(__name__)

#: short codec name -> PyAV encoder, default options (fast, quiet)
ENCODERS: dict[str, tuple[str, dict[str, str]]] = {
    "h264": ("libx264", {"preset": "ultrafast", "crf": "23"}),
    "hevc": ("libx265", {"preset": "ultrafast", "x265-params": "log-level=error"}),
    "vp9": ("libvpx-vp9", {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}),
    "vp8": ("libvpx", {"deadline": "realtime", "cpu-used": "8"}),
    "av1": ("libsvtav1", {"preset": "8"}),  # 12 smears stripes on small frames
    "mpeg4": ("mpeg4", {"qscale": "4"}),
    "mjpeg": ("mjpeg", {}),
}

LAYOUTS = ("solid", "hstripes", "vstripes", "checker", "gradient", "rings")


@dataclass(frozen=True)
class Scene:
    """One shot: ``duration`` seconds of one look.

    ``layout`` is one of :data:`LAYOUTS` (``None``: chosen from the scene index); ``hue`` in
    [0, 1) (``None``: spread evenly over the scenes); ``moving`` adds a square that crosses the
    frame; ``fade_in``/``fade_out`` fade from/to black over that many seconds.
    """

    duration: float
    layout: str | None = None
    hue: float | None = None
    moving: bool = True
    fade_in: float = 0.0
    fade_out: float = 0.0


@dataclass
class SynthVideo:
    """Ground truth of a written video. Times are seconds from the first frame (PTS based)."""

    path: Path
    codec: str
    size: tuple[int, int]  # (width, height) as displayed
    fps: Fraction | None
    pix_fmt: str
    rotation: int
    frame_times: list[Fraction]
    scene_starts: list[float]
    has_audio: bool = False
    start_pts: int = 0
    time_base: Fraction = field(default=Fraction(1, 90000))
    scenes: list[Scene] = field(default_factory=list)
    detail: bool = False

    def image_at(self, t: float) -> np.ndarray:
        """The upright RGB picture that was encoded for time ``t`` (before compression)."""
        return _Painter(self.scenes, *self.size, self.detail).paint(t)

    def scene_at(self, t: float) -> int:
        """Index of the scene shown at time ``t``."""
        return _Painter(self.scenes, *self.size).scene_index(t)

    @property
    def frame_count(self) -> int:
        return len(self.frame_times)

    @property
    def duration(self) -> float:
        """End of the last frame (its start plus one nominal frame interval)."""
        if not self.frame_times:
            return 0.0
        step = 1 / self.fps if self.fps else self.frame_times[-1] - self.frame_times[-2]
        return float(self.frame_times[-1] + step)


def default_scenes(count: int = 5, total: float = 10.0) -> list[Scene]:
    """``count`` visually distinct scenes sharing ``total`` seconds (the last one fades out)."""
    each = total / count
    return [
        Scene(each, fade_in=0.3 if i == 0 else 0.0, fade_out=0.5 if i == count - 1 else 0.0)
        for i in range(count)
    ]


def vfr_times(duration: float, pattern: Sequence[Fraction] | None = None) -> list[Fraction]:
    """Frame times with a repeating pattern of gaps (default 1/30, 1/30, 1/10, 1/60 s)."""
    gaps = list(pattern or [Fraction(1, 30), Fraction(1, 30), Fraction(1, 10), Fraction(1, 60)])
    times, t, i = [], Fraction(0), 0
    while t < duration:
        times.append(t)
        t += gaps[i % len(gaps)]
        i += 1
    return times


class _Painter:
    """Renders the RGB image of any time; scene backgrounds are computed once."""

    def __init__(
        self, scenes: Sequence[Scene], width: int, height: int, detail: bool = False
    ) -> None:
        self.scenes = list(scenes)
        self.w, self.h = width, height
        # Fine texture that pans with time: makes decode cost realistic for benchmarks.
        rng = np.random.default_rng(0)
        pan = int(30 * max((s.duration for s in self.scenes), default=0.0)) + 2
        self.texture = rng.integers(-24, 24, (height, width + pan, 1), np.int16) if detail else None
        self.starts = np.cumsum([0.0] + [s.duration for s in self.scenes[:-1]]).tolist()
        self.bases = [self._background(i, s) for i, s in enumerate(self.scenes)]

    def _background(self, i: int, scene: Scene) -> np.ndarray:
        n = len(self.scenes)
        hue = scene.hue if scene.hue is not None else (i / max(n, 1) + 0.05) % 1.0
        layout = scene.layout or LAYOUTS[i % len(LAYOUTS)]
        main = np.array(colorsys.hsv_to_rgb(hue, 0.85, 0.95)) * 255
        other = np.array(colorsys.hsv_to_rgb((hue + 0.5) % 1.0, 0.6, 0.35)) * 255
        yy, xx = np.mgrid[0 : self.h, 0 : self.w]
        band = max(4, min(self.w, self.h) // 6)
        masks = {
            "solid": np.zeros((self.h, self.w), bool),
            "hstripes": (yy // band) % 2 == 1,
            "vstripes": (xx // band) % 2 == 1,
            "checker": ((yy // band) + (xx // band)) % 2 == 1,
            "gradient": None,
            "rings": (np.hypot(yy - self.h / 2, xx - self.w / 2) // band) % 2 == 1,
        }
        if layout not in masks:
            raise ValueError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
        if layout == "gradient":
            a = (xx / max(self.w - 1, 1))[..., None]
            return (main * (1 - a) + other * a).astype(np.uint8)
        img = np.empty((self.h, self.w, 3), np.uint8)
        img[:] = main.astype(np.uint8)
        img[masks[layout]] = other.astype(np.uint8)
        return img

    def scene_index(self, t: float) -> int:
        idx = int(np.searchsorted(self.starts, t, side="right")) - 1
        return max(0, min(idx, len(self.scenes) - 1))

    def paint(self, t: float) -> np.ndarray:
        i = self.scene_index(t)
        scene, local = self.scenes[i], t - self.starts[i]
        img = self.bases[i].copy()
        if self.texture is not None:
            shift = min(int(local * 30), self.texture.shape[1] - self.w)  # 30 px/s, no wrap
            tex = self.texture[:, shift : shift + self.w]
            img = np.clip(img.astype(np.int16) + tex, 0, 255).astype(np.uint8)
        if scene.moving:
            side = max(2, min(self.w, self.h) // 5)
            frac = (local / max(scene.duration, 1e-9)) % 1.0
            x = int(frac * (self.w - side))
            y = int((0.5 + 0.3 * np.sin(2 * np.pi * frac)) * (self.h - side))
            img[y : y + side, x : x + side] = 255 - img[y : y + side, x : x + side]
        alpha = 1.0
        if scene.fade_in and local < scene.fade_in:
            alpha = local / scene.fade_in
        if scene.fade_out and local > scene.duration - scene.fade_out:
            alpha = min(alpha, max(0.0, (scene.duration - local) / scene.fade_out))
        if alpha < 1.0:
            img = (img * alpha).astype(np.uint8)
        return img


def _open_stream(container, codec: str, fps, width, height, pix_fmt, time_base, gop, options):
    if codec not in ENCODERS:
        raise ValueError(f"unknown codec {codec!r}; use one of {', '.join(ENCODERS)}")
    encoder, defaults = ENCODERS[codec]
    opts = {**defaults, **(options or {})}
    if codec == "av1":
        # SVT-AV1 prints a banner on stderr unless told otherwise.
        os.environ.setdefault("SVT_LOG", "1")
    stream = container.add_stream(encoder, rate=fps, options=opts)
    stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
    stream.codec_context.time_base = time_base
    stream.time_base = time_base
    if gop:
        stream.codec_context.gop_size = gop
    return stream


class _Tone:
    """A quiet 440 Hz AAC tone, encoded in step with the video so the muxer can interleave."""

    def __init__(self, container, rate: int = 16000) -> None:
        self.stream = container.add_stream("aac", rate=rate, layout="mono")
        self.container, self.rate, self.done = container, rate, 0

    def until(self, seconds: float) -> None:
        end = int(seconds * self.rate)
        while self.done < end:
            n = min(1024, end - self.done)
            t = (self.done + np.arange(n)) / self.rate
            chunk = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = self.rate, self.done
            self.done += n
            for packet in self.stream.encode(frame):
                self.container.mux(packet)

    def finish(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)


def write_video(
    path: str | os.PathLike[str],
    scenes: Sequence[Scene] | None = None,
    *,
    codec: str = "h264",
    size: tuple[int, int] = (160, 90),
    fps: Fraction | int | str = 30,
    pix_fmt: str = "yuv420p",
    frame_times: Sequence[Fraction] | None = None,
    start_pts: int = 0,
    time_base: Fraction | None = None,
    rotation: int = 0,
    audio: bool = False,
    gop: int | None = None,
    options: dict[str, str] | None = None,
    detail: bool = False,
) -> SynthVideo:
    """Write ``scenes`` (default :func:`default_scenes`) to ``path``; return the ground truth.

    ``size`` is the displayed (upright) size. ``frame_times`` (seconds, Fractions) makes a
    variable-frame-rate file; otherwise frames are every ``1/fps``. ``start_pts`` shifts every
    PTS (a stream that does not start at 0). ``rotation`` stores a display matrix (degrees
    counter-clockwise, as :attr:`av.VideoFrame.rotation` and ffprobe report it); the stored
    pictures are turned the other way so a correct reader shows them upright. The container
    follows the suffix (.mp4 is written with ``faststart``: index first). ``detail`` adds a
    panning noise texture (realistic bitrates and decode cost, for benchmarks); ``options``
    override the encoder's (e.g. ``{"preset": "medium"}`` for B-frames).
    """
    path = Path(path)
    fps = Fraction(fps)
    scenes = list(scenes or default_scenes())
    frame_times, cfr, tb = _timeline(scenes, fps, frame_times, time_base)
    width, height = size
    stored = (height, width) if rotation % 180 else (width, height)
    if pix_fmt.startswith("yuv420") and codec == "h264" and (stored[0] % 2 or stored[1] % 2):
        raise ValueError("libx264 needs even sizes with yuv420p; use pix_fmt='yuv444p' or vp9")
    painter = _Painter(scenes, width, height, detail)
    opts = {"movflags": "faststart"} if path.suffix.lower() in (".mp4", ".mov") else {}
    with av.open(str(path), "w", options=opts) as container:
        stream = _open_stream(container, codec, fps, *stored, pix_fmt, tb, gop, options)
        tone = _Tone(container) if audio else None
        if rotation % 360:
            stream.set_display_rotation(rotation)
        _encode(container, stream, painter, frame_times, start_pts, rotation, tone)
    firsts = _scene_first_frames(painter, frame_times)
    rate, times = fps if cfr else None, list(frame_times)
    return SynthVideo(
        path, codec, size, rate, pix_fmt, rotation % 360, times, firsts, audio, start_pts, tb,
        scenes, detail
    )  # fmt: skip


def _timeline(
    scenes: list[Scene],
    fps: Fraction,
    frame_times: Sequence[Fraction] | None,
    time_base: Fraction | None,
) -> tuple[Sequence[Fraction], bool, Fraction]:
    """(frame times, whether they sit on the 1/fps grid, the stream's time base)."""
    if frame_times is None:
        n = max(1, round(sum(s.duration for s in scenes) * fps))
        frame_times = [Fraction(i) / fps for i in range(n)]
    cfr = _on_grid(frame_times, fps)
    return frame_times, cfr, time_base or (1 / fps if cfr else Fraction(1, 90000))


def _encode(
    container,
    stream,
    painter: _Painter,
    frame_times: Sequence[Fraction],
    start_pts: int,
    rotation: int,
    tone: _Tone | None,
) -> None:
    tb = stream.codec_context.time_base
    k = rotation // 90  # store the picture turned back, so displaying it makes it upright
    for t in frame_times:
        image = painter.paint(float(t))
        if k % 4:
            image = np.ascontiguousarray(np.rot90(image, -k))
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = start_pts + round(t / tb), tb
        for packet in stream.encode(frame):
            container.mux(packet)
        if tone:
            tone.until(float(t))  # keep audio in step so the muxer can interleave
    for packet in stream.encode():
        container.mux(packet)
    if tone:
        tone.until(float(frame_times[-1]) + 0.1)
        tone.finish()


def _on_grid(times: Sequence[Fraction], fps: Fraction) -> bool:
    return all(t * fps == i for i, t in enumerate(times))


def _scene_first_frames(painter: _Painter, times: Sequence[Fraction]) -> list[float]:
    """Time of the first frame of each scene that has frames (what a decoder can see)."""
    starts: dict[int, float] = {}
    for t in times:
        starts.setdefault(painter.scene_index(float(t)), float(t))
    return [starts[i] for i in sorted(starts)]


def write_audio_only(path: str | os.PathLike[str], duration: float = 1.0) -> Path:
    """An audio-only file (AAC tone), e.g. ``.m4a`` or ``.mp4``: a video reader must refuse it."""
    path = Path(path)
    with av.open(str(path), "w") as container:
        tone = _Tone(container)
        tone.until(duration)
        tone.finish()
    return path


def sample_video(
    path: str | os.PathLike[str],
    *,
    duration: float = 24.0,
    size: tuple[int, int] = (640, 360),
    fps: Fraction | int | str = 30,
    codec: str = "h264",
    scenes: int = 5,
) -> SynthVideo:
    """The demo video of ``diffcap sample``: ``scenes`` distinct shots with fades, with audio."""
    return write_video(
        path, default_scenes(scenes, duration), codec=codec, size=size, fps=fps, audio=True
    )
