"""Synthetic clips with known camera moves, for tests and benchmarks/camera_motion.py.

A window (the "camera") moves over a large random-texture image: it pans, tilts, zooms,
rolls, shakes, or stays still while a textured square crosses the picture. Each
:class:`Move` lasts ``duration`` seconds; the truth is the list of (start, end, label).

    from diffcap.video.camsynth import Move, write_camera_clip
    truth = write_camera_clip("moves.mp4", [Move("pan_left", 2.0, 0.2), Move("static", 2.0)])
    truth    # [(0.0, 2.0, "pan_left"), (2.0, 4.0, "static")]

``speed`` is in frame widths (pan), heights (tilt) per second, log scale per second (zoom),
degrees per second (roll) or the shake's amplitude in frame widths.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import av
import numpy as np

#: Labels a :class:`Move` can have (``subject``: static camera, a square moving across).
MOVES = (
    "static", "subject", "pan_left", "pan_right", "tilt_up", "tilt_down",
    "zoom_in", "zoom_out", "roll", "shake",
)  # fmt: skip


@dataclass(frozen=True)
class Move:
    label: str
    duration: float = 2.0
    speed: float = 0.2


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Multi-scale smooth RGB noise (float32, 0-255): detail at every scale, like a scene."""
    rng = np.random.default_rng(seed)
    out = np.zeros((height, width, 3), np.float32)
    for cell in (3, 9, 27, 81):
        small = rng.random((height // cell + 2, width // cell + 2, 3)).astype(np.float32)
        up = np.repeat(np.repeat(small, cell, 0), cell, 1)[:height, :width]
        out += up * cell**0.5
    out -= out.min()
    return out * (255.0 / out.max())


def _sample(img: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``img`` at float coordinates (clipped to the image)."""
    h, w = img.shape[:2]
    xs = np.clip(xs, 0, w - 2.001)
    ys = np.clip(ys, 0, h - 2.001)
    x0, y0 = xs.astype(np.int32), ys.astype(np.int32)
    fx, fy = (xs - x0)[..., None], (ys - y0)[..., None]
    top = img[y0, x0] * (1 - fx) + img[y0, x0 + 1] * fx
    bottom = img[y0 + 1, x0] * (1 - fx) + img[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


@dataclass
class _Camera:
    x: float
    y: float
    scale: float = 1.0  # texture pixels per picture pixel
    angle: float = 0.0  # radians


def _step(cam: _Camera, move: Move, size: tuple[int, int], dt: float) -> None:
    w, h = size
    s = move.speed
    dx = dy = 0.0  # in the picture's axes (a rolled camera pans along its own)
    if move.label in ("pan_left", "pan_right"):
        dx = (1 if move.label == "pan_right" else -1) * s * w * dt * cam.scale
    elif move.label in ("tilt_up", "tilt_down"):
        dy = (1 if move.label == "tilt_down" else -1) * s * h * dt * cam.scale
    cam.x += math.cos(cam.angle) * dx - math.sin(cam.angle) * dy
    cam.y += math.sin(cam.angle) * dx + math.cos(cam.angle) * dy
    if move.label in ("zoom_in", "zoom_out"):
        cam.scale *= math.exp((-1 if move.label == "zoom_in" else 1) * s * dt)
    elif move.label == "roll":
        cam.angle += math.radians(s) * dt


def _shake(t: float, amplitude: float, seed: int) -> tuple[float, float]:
    """A handheld tremor: a few sines of 1.5-6 Hz, no drift."""
    rng = np.random.default_rng(seed)
    freqs, phases = rng.uniform(1.5, 6.0, (2, 4)), rng.uniform(0, 2 * math.pi, (2, 4))
    dx = float(np.sum(np.sin(2 * math.pi * freqs[0] * t + phases[0]))) / 2
    dy = float(np.sum(np.sin(2 * math.pi * freqs[1] * t + phases[1]))) / 2
    return dx * amplitude, dy * amplitude


def _render(tex: np.ndarray, cam: _Camera, size: tuple[int, int], off: tuple[float, float]):
    w, h = size
    gx, gy = np.meshgrid(np.arange(w) - w / 2, np.arange(h) - h / 2)
    c, s = math.cos(cam.angle), math.sin(cam.angle)
    xs = cam.x + off[0] + cam.scale * (c * gx - s * gy)
    ys = cam.y + off[1] + cam.scale * (s * gx + c * gy)
    return _sample(tex, xs, ys)


def write_camera_clip(
    path: str | os.PathLike[str],
    moves: Sequence[Move],
    *,
    codec: str = "libx264",
    size: tuple[int, int] = (320, 180),
    fps: int = 30,
    options: dict[str, str] | None = None,
    seed: int = 0,
) -> list[tuple[float, float, str]]:
    """Write the clip; return (start, end, label) per move (``subject`` reads ``static``)."""
    w, h = size
    tex = texture(6 * h, 6 * w, seed)
    subject = texture(h // 2, h // 2, seed + 1)
    cam = _Camera(3 * w, 3 * h)
    truth, t0 = [], 0.0
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = dict(options or {})
        frame_no = 0
        for move in moves:
            count = round(move.duration * fps)
            for i in range(count):
                t = frame_no / fps
                if i:
                    _step(cam, move, size, 1 / fps)
                off = (0.0, 0.0)
                if move.label == "shake":  # from where the camera was: no jump at the start
                    now, first = _shake(t, move.speed * w, seed), _shake(t0, move.speed * w, seed)
                    off = (now[0] - first[0], now[1] - first[1])
                pic = _render(tex, cam, size, off)
                if move.label == "subject":
                    _paste_subject(pic, subject, i / max(count - 1, 1))
                frame = av.VideoFrame.from_ndarray(pic.astype(np.uint8), format="rgb24")
                frame.pts = frame_no
                out.mux(stream.encode(frame))
                frame_no += 1
            truth.append((t0, frame_no / fps, "static" if move.label == "subject" else move.label))
            t0 = frame_no / fps
        out.mux(stream.encode())
    return truth


def _paste_subject(pic: np.ndarray, subject: np.ndarray, progress: float) -> None:
    """A square a third of the picture high crossing it left to right (in place)."""
    h, w = pic.shape[:2]
    side = subject.shape[0]
    x = int(progress * (w - side))
    y = (h - side) // 2 + int(h / 8 * math.sin(progress * 2 * math.pi))
    pic[y : y + side, x : x + side] = subject
