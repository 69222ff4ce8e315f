"""What the model under test sees of a video: the engine's own pieces, saved once per video.

- ``grid``: ShareGPT4Video-8B's input, 16 frames at the midpoints of 16 equal segments tiled
  4x4 with 50-px white bands, longest side at most 1920 px (``diffcap.export.grid``), after
  the model's fixed pre-prompt;
- ``frames``: N uniform frames (the same midpoints), one image each, in time order;
- ``keyframes``: diffcap's semantic-aware keyframes (``keyframes`` config section);
- ``caption``: no image; a text model answers from the video's diffcap caption.

Images are written to ``OUT/inputs/<mode>/<video key>/`` and read back on a rerun, so the
requests (and their cache keys) are byte-identical across resumes.

    index = VideoIndex(Path("MVBench/video"))
    path = index.find("star/Charades_v1_480/ABC.mp4")      # or a bare id: "ABC"
    images = video_images("grid", path, out_dir, cfg)
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from pathlib import Path
from typing import Any

from diffcap.errors import ConfigError
from diffcap.models.base import ImageInput

log = logging.getLogger(__name__)

__all__ = [
    "FRAME_FOLDER_FPS",
    "INPUT_MODES",
    "VIDEO_EXTENSIONS",
    "VideoIndex",
    "input_times",
    "preamble",
    "video_images",
]

INPUT_MODES = ("grid", "frames", "keyframes", "caption")
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".ts"}
)
FRAME_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png"})
#: Frame rate of a video released as a folder of frames (MVBench's ``tvqa/frames_fps3_hq``:
#: ``00001.jpg``... at 3 fps, as its inference notebook reads them).
FRAME_FOLDER_FPS = 3.0
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: One lock per input folder: questions about the same video render it once.
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class VideoIndex:
    """The video files under a folder, found by relative path, path tail, file name or stem
    (case-insensitive), in that order."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._by_rel: dict[str, Path] = {}
        self._by_name: dict[str, Path] = {}
        self._by_stem: dict[str, Path] = {}
        folders: set[Path] = set()
        for p in sorted(root.rglob("*")):
            if p.suffix.lower() in FRAME_EXTENSIONS and p.parent != root:
                folders.add(p.parent)  # a video released as frames: its folder is the video
            if p.suffix.lower() not in VIDEO_EXTENSIONS or not p.is_file():
                continue
            self._add(root, p)
        for folder in sorted(folders):
            if folder.relative_to(root).as_posix().lower() not in self._by_rel:
                self._add(root, folder)

    def _add(self, root: Path, p: Path) -> None:
        self._by_rel[p.relative_to(root).as_posix().lower()] = p
        self._by_name.setdefault(p.name.lower(), p)
        self._by_stem.setdefault(p.stem.lower(), p)

    def find(self, key: str) -> Path | None:
        k = key.replace("\\", "/").strip("/").lower()
        if k in self._by_rel:
            return self._by_rel[k]
        for rel, p in self._by_rel.items():
            if rel.endswith("/" + k):
                return p
        name = k.rsplit("/", 1)[-1]
        return (
            self._by_name.get(name) or self._by_stem.get(name) or self._by_stem.get(Path(name).stem)
        )


def preamble(mode: str, n_images: int) -> str:
    """The text before the question for an input mode."""
    if mode == "grid":
        from diffcap.export.grid import GRID_PRE_PROMPT  # lazy: start-up

        return GRID_PRE_PROMPT
    if mode == "frames":
        return f"The images are {n_images} frames sampled uniformly from a video, in time order."
    if mode == "keyframes":
        return f"The images are {n_images} keyframes of a video, in time order."
    return "Here is a detailed description of a video:\n"


def _folder(out_dir: Path, mode: str, key: str, span: Any, n: int) -> Path:
    tag = f"{key}|{span}|{n}"
    safe = _UNSAFE.sub("_", key)[:60]
    return out_dir / "inputs" / mode / f"{safe}-{hashlib.sha256(tag.encode()).hexdigest()[:8]}"


def video_images(
    mode: str,
    path: Path,
    out_dir: Path,
    cfg: Any,
    *,
    key: str,
    span: tuple[float | None, float | None] | None = None,
    n_frames: int = 16,
    embedder: Any = None,
) -> tuple[ImageInput, ...]:
    """The images of ``mode`` for one video (``cfg``: the RunConfig: image size, keyframes;
    ``embedder``: the keyframes' image embedder, made from ``cfg`` when None)."""
    folder = _folder(out_dir, mode, key, span, n_frames)
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(str(folder), threading.Lock())
    with lock:
        return _cached_images(mode, path, folder, cfg, key, span, n_frames, embedder)


def video_image_files(mode: str, path: Path, out_dir: Path, cfg: Any, **kw: Any) -> list[str]:
    """:func:`video_images`, as the paths of the saved JPEGs (what a row carries between
    stages: rows stay JSON, so they travel to Ray actors)."""
    video_images(mode, path, out_dir, cfg, **kw)
    folder = _folder(out_dir, mode, kw["key"], kw.get("span"), kw.get("n_frames", 16))
    return [str(f) for f in sorted(folder.glob("*.jpg"))]


def load_images(files: Any) -> tuple[ImageInput, ...]:
    return tuple(ImageInput(Path(f).read_bytes()) for f in files)


def input_times(files: Any) -> tuple[float, ...] | None:
    """The times (s) of the frames behind saved input images (``times.json`` beside them),
    or None when not known."""
    if not files:
        return None
    try:
        times = json.loads((Path(files[0]).parent / "times.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return tuple(float(t) for t in times)


def _cached_images(
    mode: str,
    path: Path,
    folder: Path,
    cfg: Any,
    key: str,
    span: tuple[float | None, float | None] | None,
    n_frames: int,
    embedder: Any,
) -> tuple[ImageInput, ...]:
    done = folder / "done"
    if done.is_file():
        files = sorted(folder.glob("*.jpg"))
        return tuple(ImageInput(f.read_bytes()) for f in files)
    blobs, times = _render(mode, path, folder, cfg, key, span or (None, None), n_frames, embedder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, blob in enumerate(blobs):
        (folder / f"{i:04d}.jpg").write_bytes(blob)
    (folder / "times.json").write_text(json.dumps([round(t, 6) for t in times]) + "\n")
    done.write_text("ok\n")
    return tuple(ImageInput(b) for b in blobs)


def _render(
    mode: str,
    path: Path,
    folder: Path,
    cfg: Any,
    key: str,
    span: tuple[float | None, float | None],
    n_frames: int,
    embedder: Any,
) -> tuple[list[bytes], list[float]]:
    """The encoded images of ``mode`` and the times (s) of the frames they show."""
    from diffcap.captioning.images import encode_jpeg  # lazy: start-up

    max_side = cfg.model.image_max_side
    if path.is_dir():
        return _render_frames(mode, path, key, span, n_frames, max_side)
    if mode == "grid":
        from diffcap.export.grid import grid_image  # lazy: start-up

        grid, times = grid_image(path, 16, span, key)
        return [encode_jpeg(grid, None, quality=90)], times
    if mode == "frames":
        from diffcap.export.grid import grid_times  # lazy: start-up
        from diffcap.export.records import clamp_window  # lazy: start-up
        from diffcap.video import open_video  # lazy: start-up

        with open_video(path) as src:
            start, end = clamp_window(span, src.info().duration, key)
            frames = list(src.frames_at(grid_times(end, n_frames, start)))
        return [encode_jpeg(f.image, max_side) for f in frames], [f.time for f in frames]
    if mode == "keyframes":
        from diffcap.keyframes import extract_keyframes  # lazy: start-up

        kcfg = cfg.keyframes
        if span is not None and span != (None, None):
            kcfg = kcfg.model_copy(update={"start": span[0], "end": span[1]})
        kset = extract_keyframes(
            path, kcfg, embedder, out_dir=folder.parent, video_id=folder.name + "-kf"
        )
        pairs = [(kset.image_path(k), k) for k in kset.keyframes]
        kept = [(f, k) for f, k in pairs if f is not None]
        return [encode_jpeg(_load(f), max_side) for f, _ in kept], [k.time for _, k in kept]
    raise ValueError(f"no images for input mode {mode!r}")


def _render_frames(
    mode: str,
    folder: Path,
    key: str,
    span: tuple[float | None, float | None],
    n: int,
    max_side: int | None,
) -> tuple[list[bytes], list[float]]:
    """A video released as a folder of frames at :data:`FRAME_FOLDER_FPS` (in name order):
    the frames at the grid's times (the frame shown at time t is number round(t*fps) + 1)."""
    import math

    from diffcap.captioning.images import encode_jpeg  # lazy: start-up
    from diffcap.export.grid import GRID_GAP, GRID_MAX_SIDE, grid_times  # lazy: start-up
    from diffcap.export.records import clamp_window  # lazy: start-up

    if mode == "keyframes":
        raise ConfigError(
            f"{folder}: a video released as frames has no keyframes input",
            hint="use --input grid or frames",
        )
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in FRAME_EXTENSIONS)
    start, end = clamp_window(span, len(files) / FRAME_FOLDER_FPS, key)
    times = grid_times(end, 16 if mode == "grid" else n, start)
    picked = [files[min(len(files) - 1, round(t * FRAME_FOLDER_FPS))] for t in times]
    images = [_load(f) for f in picked]
    if mode == "grid":
        from diffcap.captioning.images import resize_max_side, tile_grid  # lazy: start-up

        grid = tile_grid(images, cols=math.ceil(math.sqrt(16)), gap=GRID_GAP)
        return [encode_jpeg(resize_max_side(grid, GRID_MAX_SIDE), None, quality=90)], times
    return [encode_jpeg(img, max_side) for img in images], times


def _load(path: Path) -> Any:
    from PIL import Image

    with Image.open(path) as img:
        return img.convert("RGB")
