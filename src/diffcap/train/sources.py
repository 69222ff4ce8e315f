"""Reading the sources of training data: which kind a path is, its records or items, and the
captioning settings (prompt preset, image sizes, layouts) the examples must be built with.

    kind = detect(Path("runs/teacher"))            # "run"
    records, settings = records_and_settings(Path("runs/teacher"), kind)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from diffcap.config import CaptionConfig, ModelConfig
from diffcap.config.resolve import resolve_config
from diffcap.errors import ConfigError
from diffcap.export.records import open_records
from diffcap.store.rundir import RunDir
from diffcap.timeline import Caption, Keyframe, VideoRecord

__all__ = ["RunSettings", "detect", "read_items", "records_and_settings"]

log = logging.getLogger(__name__)


_CAPTION = CaptionConfig.model_fields  # the run config's defaults, defined once there


@dataclass(frozen=True)
class RunSettings:
    """The settings of the run that made the records (defaults when there is no config)."""

    prompt_preset: str = _CAPTION["prompt_preset"].default
    templates: dict[str, str] = field(default_factory=dict)
    pair_layout: str = _CAPTION["pair_layout"].default
    fast_layout: Literal["grid", "strip"] = _CAPTION["fast_layout"].default
    fast_max_frames: int = _CAPTION["fast_max_frames"].default
    fast_max_side: int = _CAPTION["fast_max_side"].default
    image_max_side: int = ModelConfig.model_fields["image_max_side"].default

    @classmethod
    def from_config(cls, path: Path | None) -> RunSettings:
        if path is None or not path.is_file():
            return cls()

        cfg = resolve_config(None, str(path), {})
        cap = cfg.caption
        return cls(
            prompt_preset=cap.prompt_preset,
            templates=dict(cap.templates),
            pair_layout=cap.pair_layout,
            fast_layout=cap.fast_layout,
            fast_max_frames=cap.fast_max_frames,
            fast_max_side=cap.fast_max_side,
            image_max_side=cfg.model.image_max_side,
        )

    def resolve_pair_layout(
        self, requested: str, templates: Any
    ) -> Literal["composite", "two_images"]:
        """As :func:`diffcap.captioning.slide.resolve_pair_layout` decides for the
        transformers backend (which takes several images): an explicit layout wins, then
        the run's, then the preset's, else two images."""
        for choice in (requested, self.pair_layout):
            if choice != "auto":  # both are checked config values: composite or two_images
                return cast('Literal["composite", "two_images"]', choice)
        return (
            "composite"
            if getattr(templates, "pair_layout", None) == "composite"
            else ("two_images")
        )


def detect(path: Path) -> str:
    """``run`` (a run directory), ``records`` (diffcap records JSONL), ``sharegpt4video``
    (JSONL rows with ``captions`` but no ``mode``), ``llava`` (conversation JSON) or
    ``messages`` (LLaMA-Factory / ms-swift)."""
    if path.is_dir():
        return "run"
    if not path.is_file():
        raise ConfigError(
            f"{path}: no such run directory or data file",
            hint="pass a `diffcap run` directory, an export, or ShareGPT4Video-style JSONL",
        )
    first = _first_item(path)
    if "conversations" in first:
        return "llava"
    if "messages" in first:
        return "messages"
    if "captions" in first:
        return "records" if "mode" in first and "duration" in first else "sharegpt4video"
    raise ConfigError(
        f"{path}: not training data (the first item has none of conversations, messages, captions)",
        hint="pass a `diffcap run` directory, `diffcap export --format llava|grid|...` "
        "output, or ShareGPT4Video-style JSONL",
    )


def _first_item(path: Path) -> dict[str, Any]:
    items = read_items(path, limit=1)
    if not items:
        raise ConfigError(f"{path}: empty data file", hint="export some captions first")
    return items[0]


def read_items(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """The items of a JSON list or a JSONL file (a bad line names its number)."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from exc
        return [i for i in items if isinstance(i, dict)][:limit]
    out: list[dict[str, Any]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{n}: invalid JSON ({exc.msg})") from exc
        if limit is not None and len(out) >= limit:
            break
    return out


def messages_to_llava(item: dict[str, Any]) -> dict[str, Any]:
    """A LLaMA-Factory / ms-swift ``{"messages", "images"}`` item as a LLaVA item (its
    system turn kept as ``system``)."""
    roles = {"user": "human", "assistant": "gpt"}
    msgs = item["messages"]
    system = next((m["content"] for m in msgs if m.get("role") == "system"), None)
    turns = [
        {"from": roles[m["role"]], "value": m["content"]} for m in msgs if m.get("role") in roles
    ]
    out = {k: v for k, v in item.items() if k not in ("messages", "images")}
    out.update(conversations=turns, image=list(item.get("images") or []), system=system)
    return out


def records_and_settings(path: Path, kind: str) -> tuple[Any, RunSettings]:
    """The records of a run / records JSONL / ShareGPT4Video JSONL and the run's settings."""
    if kind == "sharegpt4video":
        return _sharegpt4video_records(path), RunSettings()

    source = open_records(path)
    config = (RunDir(path) if kind == "run" else RunDir.beside(path)).config
    if not config.is_file():
        log.warning(
            "%s: no %s: the training prompts use diffcap's defaults (pass --prompt-preset /"
            " --template if the captions were made with others)",
            path,
            config.name,
        )
    return source, RunSettings.from_config(config)


def _sharegpt4video_records(path: Path) -> Iterator[VideoRecord]:
    for n, row in enumerate(read_items(path), 1):
        try:
            yield sharegpt4video_record(row, path.parent)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}:{n}: not a ShareGPT4Video row ({exc})") from exc


def sharegpt4video_record(row: dict[str, Any], base: Path) -> VideoRecord:
    """A ShareGPT4Video row (``captions`` with idx ``"-1"`` last; optional ``timestamps``,
    ``keyframes`` paths relative to the file, ``span``) as a VideoRecord."""
    caps = [c for c in row["captions"] if str(c["idx"]) != "-1"]
    summary = next((c for c in row["captions"] if str(c["idx"]) == "-1"), None)
    times = list(row.get("timestamps") or [])
    files = list(row.get("keyframes") or [])
    span = list(row.get("span") or [None, None])
    kfs, diffs = [], []
    for i, c in enumerate(caps):
        t = float(times[i]) if i < len(times) and times[i] is not None else 2.0 * i
        file = files[i] if i < len(files) else None
        kfs.append(Keyframe(idx=i, time=t, pts=0, file=str(base / file) if file else None))
        diffs.append(Caption(idx=str(i), content=c["content"], time=t))
    duration = float(span[1] if span[1] is not None else (kfs[-1].time if kfs else 0.0))
    if summary is not None:
        diffs.append(Caption(idx="-1", content=summary["content"], start=span[0], end=span[1]))
    return VideoRecord(
        video_id=str(row["video_id"]),
        video_path=str(row.get("video_path", "")),
        duration=duration,
        keyframes=kfs,
        captions=diffs,
        mode="slide",
        extra={"span": span} if span[0] is not None or span[1] is not None else {},
    )


def has_keyframe_images(rec: VideoRecord) -> bool:
    return bool(rec.keyframes) and all(k.file and Path(k.file).is_file() for k in rec.keyframes)
