"""LLaVA/ShareGPT conversation JSON to fine-tune a captioner on ShareCaptioner-Video's four tasks.

Prompts are rendered from the same :mod:`diffcap.prompts` templates the captioner uses at
inference, and images are built by the same composites, so training and inference inputs match.

- ``fast``: the keyframes tiled into one labelled grid (or strip) -> the summary caption.
- ``slide``: the first keyframe -> the first caption; then keyframes k-1 and k (one vertical
  composite with a 50-px white band, or two images) plus the previous caption, with the real
  timestamps in the prompt -> the differential caption k.
- ``clip``: the differential captions of a window -> its clip caption (text only); only where
  clip captions exist (record key ``clips`` or ``clip_captions``, or ``--clip-captions`` from
  ``--format clips``).
- ``recaption``: a short prompt (record key ``short_caption``) -> the dense summary caption.
- ``summary`` (opt-in): slide mode's last step, the time-stamped differential captions (text
  only) -> the summary caption, so a model trained on it can run the whole slide mode itself.

Output: a JSON list of ``{"id", "task", "video_id", "image"?, "conversations": [{"from":
"human", "value": "<image>\\n..."}, {"from": "gpt", "value": ...}]}``; ``image`` is one path or
a list (two-image pairs), relative to the JSON's folder; images go to ``<out stem>_images/``.
A requested task that yields no sample gets a note in the summary line saying how to get
some (:data:`ZERO_TASK_NOTES`).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from diffcap.captioning.calls import Span
from diffcap.captioning.camera_facts import camera_fact, camera_summary
from diffcap.captioning.fast import frame_label
from diffcap.captioning.images import (
    encode_jpeg,
    subsample_even,
    tile_grid,
    vertical_composite,
    vertical_strip,
)
from diffcap.captioning.text import NoCaptionsInRange, captions_in_range
from diffcap.errors import ConfigError, DiffcapError
from diffcap.export.base import ExportOptions, ExportResult, progress_bar
from diffcap.export.records import (
    BadKeyframe,
    RecordSource,
    keyframe_files,
    record_span,
    relative_to_output,
)
from diffcap.fsutil import atomic_open
from diffcap.prompts import load_templates
from diffcap.timeline import VideoRecord

logger = logging.getLogger(__name__)

__all__ = ["ZERO_TASK_NOTES", "ImageWriter", "llava_items", "write_items", "write_llava"]

IMAGE_TOKEN = "<image>"

#: Why a requested task can yield 0 samples and what to do about it (summary-line notes).
ZERO_TASK_NOTES = {
    "fast": "no record has a summary caption and keyframes",
    "slide": "no record has one differential caption per keyframe (caption in slide mode)",
    "clip": (
        "no clip captions: pass --clip-captions FILE from "
        "`diffcap export SOURCE --format clips` (or records with a `clips` key)"
    ),
    "recaption": (
        "no record has a `short_caption` (set by `diffcap run` with de-dup or manifest captions)"
    ),
    "summary": "no record has differential captions and a summary (caption in slide mode)",
}


class ImageWriter:
    """Writes JPEGs under ``root`` and returns their paths as the JSON should name them."""

    def __init__(self, root: Path, out_dir: Path, opts: ExportOptions) -> None:
        self.root, self.out_dir, self.opts = root, out_dir, opts
        self.count = 0
        self.written: list[Path] = []  # this record's files, removed if it is skipped

    def _wrote(self, path: Path) -> None:
        self.count += 1
        self.written.append(path)

    def discard(self) -> None:
        """Remove the files written since the last :meth:`keep` (a skipped record's)."""
        for path in self.written:
            path.unlink(missing_ok=True)
        self.count -= len(self.written)
        self.written = []

    def keep(self) -> None:
        self.written = []

    def save(
        self, image: Image.Image, rel: str, max_side: int | None, quality: int | None = None
    ) -> str:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_jpeg(image, max_side, quality or self.opts.jpeg_quality))
        self._wrote(path)
        return relative_to_output(path, self.out_dir, self.opts.absolute_paths)

    def save_keyframe(self, src: Path, rel: str, max_side: int) -> str:
        """A keyframe as inference sends it: the saved JPEG byte for byte when it is within
        ``max_side``, else re-encoded within it."""
        with Image.open(src) as probe:
            as_is = probe.format == "JPEG" and probe.mode == "RGB" and max(probe.size) <= max_side
        if not as_is:
            return self.save(_load(src), rel, max_side)
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(src.read_bytes())
        self._wrote(path)
        return relative_to_output(path, self.out_dir, self.opts.absolute_paths)


def conversation(prompt: str, answer: str, n_images: int) -> list[dict[str, str]]:
    human = "\n".join([IMAGE_TOKEN] * n_images + [prompt])
    return [{"from": "human", "value": human}, {"from": "gpt", "value": answer}]


def _item(rec: VideoRecord, task: str, n: int, prompt: str, answer: str, image: Any) -> dict:
    item: dict[str, Any] = {
        "id": f"{rec.video_id}:{task}:{n}",
        "task": task,
        "video_id": rec.video_id,
    }
    n_images = 0 if image is None else (len(image) if isinstance(image, list) else 1)
    if image is not None:
        item["image"] = image
    item["conversations"] = conversation(prompt, answer, n_images)
    return item


def _load(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


def fast_items(rec: VideoRecord, ts: Any, images: ImageWriter) -> Iterator[dict]:
    summary = rec.summary
    if summary is None or not rec.keyframes:
        return
    opts = images.opts
    files = keyframe_files(rec)
    keep = subsample_even(len(files), opts.fast_max_frames)
    frames = [_load(files[i]) for i in keep]
    labels = [frame_label(n + 1, rec.keyframes[i].time) for n, i in enumerate(keep)]
    layout = tile_grid if opts.fast_layout == "grid" else vertical_strip
    tiled = layout(frames, labels=labels, max_size=opts.fast_max_side)
    path = images.save(tiled, f"{rec.video_id}/fast.jpg", opts.fast_max_side)
    prompt = ts["fast"].render(
        num_frames=len(keep),
        times=[rec.keyframes[i].time for i in keep],
        layout=opts.fast_layout,
        **_span_vars(rec),
    )
    yield _item(rec, "fast", 0, prompt, summary.content, path)


def _span_vars(rec: VideoRecord) -> dict[str, Any]:
    """The window variables inference rendered for this record (see captioning Span)."""
    start, end = record_span(rec)
    return Span(start or 0.0, rec.duration if end is None else end, rec.duration).variables()


def slide_items(rec: VideoRecord, ts: Any, images: ImageWriter) -> Iterator[dict]:
    diffs = rec.differential
    if not diffs:
        return
    if len(diffs) != len(rec.keyframes):
        logger.warning(
            "%s: %d differential captions for %d keyframes; no slide samples",
            rec.video_id,
            len(diffs),
            len(rec.keyframes),
        )
        return
    opts = images.opts
    files = keyframe_files(rec)
    kfs = rec.keyframes
    side = opts.image_max_side
    common = {"num_frames": len(kfs), **_span_vars(rec)}
    saved: dict[int, str] = {}

    def single(i: int) -> str:
        if i not in saved:
            saved[i] = images.save_keyframe(files[i], f"{rec.video_id}/kf{i:05d}.jpg", side)
        return saved[i]

    prompt = ts["first_frame"].render(index=1, time=kfs[0].time, **common)
    yield _item(rec, "slide", 0, prompt, diffs[0].content, single(0))
    for k in range(1, len(kfs)):
        if opts.pair_layout == "two_images":
            image: Any = [single(k - 1), single(k)]
        else:
            pair = [_load(files[i]) for i in (k - 1, k)]
            # As inference builds it: full frames stacked, the composite capped at two frames
            # (plus the band) tall.
            image = images.save(
                vertical_composite(pair), f"{rec.video_id}/pair{k:05d}.jpg", 2 * side + 50
            )
        prompt = ts["differential"].render(
            prev_index=k,
            prev_time=kfs[k - 1].time,
            index=k + 1,
            time=kfs[k].time,
            previous=diffs[k - 1].content,
            layout=opts.pair_layout,
            camera=camera_fact(kfs[k - 1], kfs[k]) if _facts(rec) else "",
            **common,
        )
        yield _item(rec, "slide", k, prompt, diffs[k].content, image)


def clip_items(rec: VideoRecord, ts: Any, clips: list[dict[str, Any]]) -> Iterator[dict]:
    seen: set[tuple[float, float, str]] = set()
    for clip in clips:
        answer = clip.get("caption") or clip.get("content")
        if not answer or clip.get("start") is None or clip.get("end") is None:
            continue
        start, end = float(clip["start"]), float(clip["end"])
        if (start, end, answer) in seen:  # the same clip in the record and in the file
            continue
        seen.add((start, end, answer))
        try:
            inside = captions_in_range(rec, start, end)
        except NoCaptionsInRange as exc:  # a clip the record cannot explain: no sample
            logger.warning("%s: clip %g-%g s skipped: %s", rec.video_id, start, end, exc)
            continue
        prompt = ts["clip_summary"].render(
            timeline=inside, num_frames=len(inside), **Span(start, end, rec.duration).variables()
        )
        yield _item(rec, "clip", len(seen) - 1, prompt, answer, None)


def record_clips(rec: VideoRecord) -> list[dict[str, Any]]:
    """Clip captions stored in the record itself (keys ``clips`` and ``clip_captions``,
    ``[{start, end, content}]``)."""
    extra = rec.extra or {}
    found = list(extra.get("clips") or []) + list(extra.get("clip_captions") or [])
    return [c for c in found if isinstance(c, dict)]


def recaption_items(rec: VideoRecord, ts: Any) -> Iterator[dict]:
    short = (rec.extra or {}).get("short_caption")
    if not short or rec.summary is None:
        return
    yield _item(
        rec, "recaption", 0, ts["recaption"].render(text=short.strip()), rec.summary.content, None
    )


def summary_items(rec: VideoRecord, ts: Any) -> Iterator[dict]:
    """The whole-video summary step of slide mode: the time-stamped differential captions
    (text only) -> the summary caption, rendered as inference renders it."""
    diffs = rec.differential
    if not diffs or rec.summary is None:
        return
    camera = camera_summary(rec.keyframes) if _facts(rec) else ""
    prompt = ts["summary"].render(
        timeline=list(diffs), num_frames=len(diffs), camera=camera, **_span_vars(rec)
    )
    yield _item(rec, "summary", 0, prompt, rec.summary.content, None)


def _facts(rec: VideoRecord) -> bool:
    """Whether the record's prompts stated the measured camera motion (so the training
    prompts do too, as inference rendered them)."""
    return bool((rec.provenance or {}).get("camera_facts"))


def llava_items(
    rec: VideoRecord, ts: Any, images: ImageWriter, clips: list[dict[str, Any]]
) -> Iterator[dict]:
    """Every training sample of the selected tasks for one record."""
    tasks = images.opts.tasks
    if "fast" in tasks:
        yield from fast_items(rec, ts, images)
    if "slide" in tasks:
        yield from slide_items(rec, ts, images)
    if "clip" in tasks:
        yield from clip_items(rec, ts, clips + record_clips(rec))
    if "recaption" in tasks:
        yield from recaption_items(rec, ts)
    if "summary" in tasks:
        yield from summary_items(rec, ts)


def load_clip_captions(path: Path | None) -> dict[str, list[dict[str, Any]]]:
    """``--format clips`` output grouped by video id."""
    by_video: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if path is None:
        return by_video
    if not Path(path).is_file():
        raise ConfigError(
            f"clip captions file {path} not found",
            hint="write it first with `diffcap export DIR --format clips`",
        )
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            by_video[row["video_id"]].append(row)
    return by_video


def write_llava(source: RecordSource, out: Path, opts: ExportOptions) -> ExportResult:
    return write_items(source, out, opts, "llava", lambda item, system: item)


#: ``convert(llava_item, system_prompt) -> the row a format writes``.
Convert = Callable[[dict[str, Any], "str | None"], dict[str, Any]]


def write_items(
    source: RecordSource,
    out: Path,
    opts: ExportOptions,
    fmt: str,
    convert: Convert,
    *,
    jsonl: bool = False,
) -> ExportResult:
    """Every sample of the selected tasks, built once (:func:`llava_items`) and written as
    ``fmt`` through ``convert``: a JSON list, or JSON lines with ``jsonl``."""
    ts = load_templates(opts.prompt_preset, overrides=opts.templates or None)
    images = ImageWriter(out.parent / f"{out.stem}_images", out.parent, opts)
    clips = load_clip_captions(opts.clip_captions)
    result = ExportResult(fmt, out)
    per_task: dict[str, int] = defaultdict(int)
    with atomic_open(out) as fh, progress_bar(opts, fmt) as bar:
        fh.write("" if jsonl else "[")
        for rec in source:
            result.records += 1
            bar.update()
            items = _record_items(rec, ts, images, clips.get(rec.video_id, []), result)
            for item in items:
                row = json.dumps(convert(item, ts.system), ensure_ascii=False)
                sep = "" if jsonl else ("\n" if result.items == 0 else ",\n")
                fh.write(sep + row + ("\n" if jsonl else ""))
                result.items += 1
                per_task[item["task"]] += 1
        fh.write("" if jsonl else "\n]\n")
    result.images = images.count
    result.extra["tasks"] = {t: per_task.get(t, 0) for t in opts.tasks}
    if result.records:  # a requested task with nothing to show says why, never silently
        result.notes.extend(_zero_note(t, opts) for t in opts.tasks if not per_task.get(t))
    return result


def _record_items(
    rec: VideoRecord, ts: Any, images: ImageWriter, clips: list[dict[str, Any]], result: Any
) -> list[dict]:
    """One record's samples, all or none: a record whose keyframe image is missing,
    truncated or not a keyframe of its video is skipped with the reason (its images are
    removed); the rest of the export goes on."""
    try:
        items = list(llava_items(rec, ts, images, clips))
    except DiffcapError as exc:
        images.discard()
        result.fail(rec.video_id, exc)
        return []
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:  # Pillow: a bad image
        images.discard()
        bad = BadKeyframe(f"video '{rec.video_id}': a keyframe image cannot be read ({exc})")
        result.fail(rec.video_id, bad)
        return []
    images.keep()
    return items


def _zero_note(task: str, opts: ExportOptions) -> str:
    why = ZERO_TASK_NOTES[task]
    if task == "clip" and opts.clip_captions is not None:
        why = (
            f"no row of {opts.clip_captions} matches a record's video_id "
            "(check it was exported from the same SOURCE)"
        )
    return f"{task}: 0 samples — {why}"
