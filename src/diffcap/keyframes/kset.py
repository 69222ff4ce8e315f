"""The result of keyframe extraction and its ``keyframes.json`` form; video ids.

    kset = KeyframeSet.load("out/clip/keyframes.json")
    [k.time for k in kset.keyframes]          # [0.0, 4.004, 9.009]
    kset.image_path(kset.keyframes[0])        # Path("out/clip/kf_0000_000000.000.jpg")
    make_video_ids(["a/clip.mp4", "b/clip.mp4", "x y.mov"])
    # ['clip-1f0c9a2e', 'clip-93b5d0c4', 'x_y']

``keyframes.json`` layout (times in seconds from the video's first frame)::

    {"video_id", "video_path", "duration", "width", "height", "fps", "embedder", "interval",
     "threshold", "keyframes": [{"idx": 0, "time": 0.0, "pts": 0, "file": "kf_0000_...jpg"}],
     "window": [start, end], "truncated": false, "max_keyframes": null, "damaged": null,
     "info": {...}}

``truncated`` is true when ``max_seconds`` cut the window short (a setting, not damage);
``damaged`` is null for an intact video, else a :class:`Damage` record, e.g.
``{"decoded_until": 7.14, "expected_duration": 12.012, "lost_packets": 0, "message":
"decoded 7.1 s of 12.0 s (truncated or damaged file)"}``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from diffcap.fsutil import atomic_write_text
from diffcap.io.inputs import video_ids
from diffcap.timeline import Keyframe, VideoInfo

#: Longest video id (the file-name stem is cut, a hash suffix keeps it unique).
MAX_ID_LEN = 80


@dataclass(frozen=True)
class Damage:
    """What a damaged video lost, as seen while extracting its keyframes.

    ``decoded_until``: seconds (from the first frame) where decodable frames ended before
    the header's ``expected_duration`` (None when the stream reached its end).
    ``lost_packets``: packets that could not be decoded (their frames are missing)."""

    decoded_until: float | None
    expected_duration: float
    lost_packets: int = 0

    @property
    def message(self) -> str:
        parts = []
        if self.decoded_until is not None:
            parts.append(
                f"decoded {self.decoded_until:.1f} s of {self.expected_duration:.1f} s "
                "(truncated or damaged file)"
            )
        if self.lost_packets:
            parts.append(f"{self.lost_packets} packet(s) could not be decoded")
        return "; ".join(parts) or "damaged file"

    def to_json(self) -> dict[str, Any]:
        return {
            "decoded_until": None if self.decoded_until is None else round(self.decoded_until, 6),
            "expected_duration": round(self.expected_duration, 6),
            "lost_packets": self.lost_packets,
            "message": self.message,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> Damage | None:
        if not d:
            return None
        until = d.get("decoded_until")
        return cls(
            decoded_until=None if until is None else float(until),
            expected_duration=float(d.get("expected_duration", 0.0)),
            lost_packets=int(d.get("lost_packets", 0)),
        )


@dataclass
class KeyframeSet:
    """Keyframes of one video. ``images`` holds RGB arrays only when nothing was written.

    ``truncated``: ``max_seconds`` cut the window (not damage). ``damaged``: what a
    truncated or corrupt file lost (None when intact); ``info.duration`` stays the header's
    claim, ``damaged.decoded_until`` says where frames really ended."""

    video_id: str
    video_path: str
    info: VideoInfo
    keyframes: list[Keyframe]
    embedder: str
    interval: float
    threshold: float
    json_path: Path | None = None
    images: list[np.ndarray] | None = None
    window: tuple[float, float] | None = None
    truncated: bool = False
    max_keyframes: int | None = None
    damaged: Damage | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def times(self) -> list[float]:
        return [k.time for k in self.keyframes]

    def image_path(self, keyframe: Keyframe) -> Path | None:
        """Absolute path of a keyframe's image (``None`` when kept in memory only)."""
        if self.json_path is None or keyframe.file is None:
            return None
        return self.json_path.parent / keyframe.file

    def to_json(self) -> dict[str, Any]:
        fps = self.info.fps_float
        return {
            "video_id": self.video_id,
            "video_path": self.video_path,
            "duration": round(self.info.duration, 6),
            "width": self.info.width,
            "height": self.info.height,
            "fps": None if fps is None else round(fps, 6),
            "embedder": self.embedder,
            "interval": self.interval,
            "threshold": self.threshold,
            "keyframes": [k.to_json() for k in self.keyframes],
            "window": None if self.window is None else [round(t, 6) for t in self.window],
            "truncated": self.truncated,
            "max_keyframes": self.max_keyframes,
            "damaged": None if self.damaged is None else self.damaged.to_json(),
            "info": self.info.to_json(),
            **self.extra,
        }

    def write_json(self, path: str | os.PathLike[str]) -> Path:
        """Write ``keyframes.json`` atomically (a reader never sees half a file)."""
        path = Path(path)

        atomic_write_text(path, json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n")
        self.json_path = path
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KeyframeSet:
        """Read a ``keyframes.json`` written by :meth:`write_json`."""
        path = Path(path)
        d = json.loads(path.read_text())
        known = {
            "video_id",
            "video_path",
            "duration",
            "width",
            "height",
            "fps",
            "embedder",
            "interval",
            "threshold",
            "keyframes",
            "window",
            "truncated",
            "max_keyframes",
            "damaged",
            "info",
        }
        window = d.get("window")
        return cls(
            video_id=d["video_id"],
            video_path=d.get("video_path", ""),
            info=_info_from_json(d),
            keyframes=[Keyframe.from_json(k) for k in d.get("keyframes", [])],
            embedder=d.get("embedder", ""),
            interval=float(d.get("interval", 0.0)),
            threshold=float(d.get("threshold", 0.0)),
            json_path=path,
            window=None if window is None else (float(window[0]), float(window[1])),
            truncated=bool(d.get("truncated", False)),
            max_keyframes=d.get("max_keyframes"),
            damaged=Damage.from_json(d.get("damaged")),
            extra={k: v for k, v in d.items() if k not in known},
        )


def _info_from_json(d: dict[str, Any]) -> VideoInfo:
    info = dict(d.get("info") or {})
    info.pop("fps_float", None)
    fps = info.get("fps", d.get("fps"))
    if isinstance(fps, str):
        fps = Fraction(fps)
    elif fps is not None:
        fps = Fraction(fps).limit_denominator(1001000)
    return VideoInfo(
        path=info.get("path", d.get("video_path", "")),
        container=info.get("container", ""),
        codec=info.get("codec", ""),
        width=int(info.get("width", d.get("width", 0))),
        height=int(info.get("height", d.get("height", 0))),
        rotation=int(info.get("rotation", 0)),
        duration=float(info.get("duration", d.get("duration", 0.0))),
        fps=fps,
        frame_count=info.get("frame_count"),
        frame_count_exact=bool(info.get("frame_count_exact", False)),
        variable_fps=bool(info.get("variable_fps", False)),
        has_audio=bool(info.get("has_audio", False)),
        start_time=float(info.get("start_time", 0.0)),
        pix_fmt=info.get("pix_fmt"),
        bit_depth=info.get("bit_depth"),
    )


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def make_video_ids(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """One id per path, by the run's one id policy (:func:`diffcap.io.inputs.video_ids`):
    the file-name stem made filesystem-safe, unique without regard to case; stems that
    collide get ``-<8 hex>`` of their source, so an id does not depend on the order of the
    inputs. The same path given twice gets the same id (it is the same video)."""
    return video_ids([str(p) for p in paths])
