"""Core value types: exact timestamps, video facts, keyframes and the caption timeline.

These hold plain Python/numpy data only (no ``av`` or ``torch`` objects), so they pickle
across processes and Ray workers. All time math lives here.

    ts = Timestamp(pts=3003, time_base=Fraction(1, 30000), origin=0)
    ts.seconds                         # 0.1001
    Timestamp.from_seconds(2.0, Fraction(1, 90000)).pts   # 180000
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np


@dataclass(frozen=True, order=True)
class Timestamp:
    """A presentation time: ``(pts - origin) * time_base`` seconds from the start of the video.

    ``origin`` is the stream's first PTS, so a stream that starts at PTS 1001 still has its
    first frame at 0.0 s.
    """

    pts: int
    time_base: Fraction
    origin: int = 0

    @property
    def exact(self) -> Fraction:
        return (self.pts - self.origin) * self.time_base

    @property
    def seconds(self) -> float:
        return float(self.exact)

    @classmethod
    def from_seconds(cls, seconds: float, time_base: Fraction, origin: int = 0) -> Timestamp:
        """The PTS nearest to ``seconds`` in ``time_base`` (inverse of :attr:`seconds`)."""
        pts = round(Fraction(seconds).limit_denominator(10**9) / time_base) + origin
        return cls(int(pts), time_base, origin)

    def __str__(self) -> str:
        return format_time(self.seconds)


def format_time(seconds: float) -> str:
    """``75.5`` -> ``'01:15.50'``; hours shown only when needed."""
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{sign}{int(h)}:{int(m):02d}:{s:05.2f}"
    return f"{sign}{int(m):02d}:{s:05.2f}"


def format_clock(seconds: float) -> str:
    """Whole seconds, rounded down, as a video site writes them: ``75.9`` -> ``'01:15'``,
    ``3725`` -> ``'1:02:05'`` (hours only past an hour)."""
    h, rem = divmod(int(max(0.0, seconds)), 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def fraction_to_str(value: Fraction | None) -> str | None:
    return None if value is None else f"{value.numerator}/{value.denominator}"


@dataclass(frozen=True)
class Frame:
    """A decoded, upright RGB frame (H x W x 3 uint8) and its true timestamp."""

    image: np.ndarray
    timestamp: Timestamp

    @property
    def time(self) -> float:
        return self.timestamp.seconds


@dataclass(frozen=True)
class VideoInfo:
    """What ``diffcap probe`` reports. Width/height are as displayed (after rotation)."""

    path: str
    container: str
    codec: str
    width: int
    height: int
    rotation: int
    duration: float
    fps: Fraction | None
    frame_count: int | None
    frame_count_exact: bool
    variable_fps: bool
    has_audio: bool
    start_time: float = 0.0
    pix_fmt: str | None = None
    bit_depth: int | None = None

    @property
    def fps_float(self) -> float | None:
        return None if self.fps is None else float(self.fps)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["fps"] = fraction_to_str(self.fps)
        d["fps_float"] = None if self.fps is None else round(float(self.fps), 6)
        return d


@dataclass(frozen=True)
class CameraMotion:
    """The camera's motion over one keyframe interval (see :mod:`diffcap.keyframes.camera`).

    ``label``: static, pan_left, pan_right, tilt_up, tilt_down, zoom_in, zoom_out, roll or
    shake; ``magnitude``: slow, moderate or fast (None for static). Rates per second:
    ``pan`` frame widths (+ right), ``tilt`` frame heights (+ up), ``zoom`` log scale (+ in),
    ``roll`` degrees (+ counter-clockwise), ``shake`` mean jitter speed in frame units.
    """

    label: str
    magnitude: str | None
    pan: float = 0.0
    tilt: float = 0.0
    zoom: float = 0.0
    roll: float = 0.0
    shake: float = 0.0
    samples: int = 0
    source: str = "mvs"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("pan", "tilt", "zoom", "roll", "shake"):
            d[k] = round(d[k], 4)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> CameraMotion | None:
        if not d:
            return None
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


@dataclass(frozen=True)
class Keyframe:
    """One selected keyframe. ``file`` is relative to the keyframes.json that lists it."""

    idx: int
    time: float
    pts: int
    file: str | None = None
    #: The camera's motion from the previous keyframe to this one (None: not measured).
    camera: CameraMotion | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "idx": self.idx,
            "time": round(self.time, 6),
            "pts": self.pts,
            "file": self.file,
        }
        if self.camera is not None:
            d["camera"] = self.camera.to_json()
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Keyframe:
        """Inverse of :meth:`to_json`; ``pts`` is -1 when the source did not store it."""
        return cls(
            idx=int(d["idx"]),
            time=float(d["time"]),
            pts=int(d.get("pts", -1)),
            file=d.get("file"),
            camera=CameraMotion.from_json(d.get("camera")),
        )


@dataclass(frozen=True)
class Caption:
    """One entry of the caption timeline.

    Differential captions have ``idx`` "0", "1", ... and ``time`` (the keyframe's time).
    The whole-video (or clip) summary has ``idx`` "-1" and ``start``/``end``.
    """

    idx: str
    content: str
    time: float | None = None
    start: float | None = None
    end: float | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"idx": self.idx}
        if self.time is not None:
            d["time"] = round(self.time, 6)
        if self.start is not None:
            d["start"] = round(self.start, 6)
        if self.end is not None:
            d["end"] = round(self.end, 6)
        d["content"] = self.content
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Caption:
        return cls(
            idx=str(d["idx"]),
            content=d.get("content", ""),
            time=d.get("time"),
            start=d.get("start"),
            end=d.get("end"),
        )


@dataclass
class Usage:
    """Token usage and estimated cost, summed over requests."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cached_requests: int = 0

    def add(self, other: Usage) -> None:
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost_usd += other.cost_usd
        self.cached_requests += other.cached_requests

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 6),
        }


@dataclass
class VideoRecord:
    """One output line: a superset of the ShareGPT4Video 40K schema (see README)."""

    video_id: str
    video_path: str
    duration: float
    keyframes: list[Keyframe]
    captions: list[Caption]
    mode: str
    provenance: dict[str, Any] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> Caption | None:
        return next((c for c in reversed(self.captions) if c.idx == "-1"), None)

    @property
    def differential(self) -> list[Caption]:
        return [c for c in self.captions if c.idx != "-1"]

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "video_id": self.video_id,
            "video_path": self.video_path,
            "duration": round(self.duration, 6),
            "keyframes": [_record_keyframe(k) for k in self.keyframes],
            "captions": [c.to_json() for c in self.captions],
            "mode": self.mode,
            "provenance": self.provenance,
            "usage": self.usage.to_json(),
        }
        d.update(self.extra)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> VideoRecord:
        known = {
            "video_id",
            "video_path",
            "duration",
            "keyframes",
            "captions",
            "mode",
            "provenance",
            "usage",
        }
        u = d.get("usage") or {}
        return cls(
            video_id=d["video_id"],
            video_path=d.get("video_path", ""),
            duration=float(d.get("duration") or 0.0),
            keyframes=[Keyframe.from_json(k) for k in d.get("keyframes", [])],
            captions=[Caption.from_json(c) for c in d.get("captions", [])],
            mode=d.get("mode", ""),
            provenance=d.get("provenance") or {},
            usage=Usage(
                requests=int(u.get("requests", 0)),
                prompt_tokens=int(u.get("prompt_tokens", 0)),
                completion_tokens=int(u.get("completion_tokens", 0)),
                cost_usd=float(u.get("cost_usd", 0.0)),
            ),
            extra={k: v for k, v in d.items() if k not in known},
        )


def _record_keyframe(k: Keyframe) -> dict[str, Any]:
    """A keyframe as a record lists it (no PTS; ``camera`` only when measured)."""
    d: dict[str, Any] = {"idx": k.idx, "time": round(k.time, 6), "file": k.file}
    if k.camera is not None:
        d["camera"] = k.camera.to_json()
    return d
