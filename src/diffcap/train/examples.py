"""Training examples: one (prompt, images, answer) per model call the captioner makes.

Every source goes through the builder of :mod:`diffcap.export.llava` (the same templates and
image composites inference uses), then becomes a :class:`TrainExample`, whose
:meth:`~TrainExample.request` is the :class:`~diffcap.models.base.ModelRequest` the captioner
sends for that step. Sources:

- a diffcap run directory, or a records JSONL of ``diffcap caption`` (its run settings — prompt
  preset, templates, image sizes, pair layout — are read from the run's ``config.yaml``);
- a ShareGPT4Video-style JSONL (``diffcap export --format sharegpt4video``, or the released
  40K file: rows without keyframe images give the text-only tasks);
- an export: LLaVA / grid conversation JSON (``{"conversations", "image"}``, e.g. a VQA mix)
  or LLaMA-Factory / ms-swift ``{"messages", "images"}`` JSON/JSONL.

    examples, report = load_examples(["runs/teacher"], DataOptions(), work_dir=Path("out/data"))
    report.line()            # "3 sources -> 42 examples [fast 3, slide 36, summary 3]"
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from diffcap.config import TrainConfig
from diffcap.errors import ConfigError
from diffcap.export.base import ALL_TASKS, ExportOptions, progress_bar
from diffcap.export.llava import IMAGE_TOKEN, ImageWriter, llava_items, load_clip_captions
from diffcap.models.base import ImageInput, ModelRequest
from diffcap.prompts import load_templates
from diffcap.train import sources

log = logging.getLogger(__name__)

__all__ = ["DataOptions", "DataReport", "TrainExample", "load_examples", "split_examples"]

#: Tasks that need no keyframe image.
TEXT_TASKS = ("clip", "recaption", "summary")


@dataclass(frozen=True)
class TrainExample:
    """One supervised step: what the captioner sends (prompt, images, system) -> answer."""

    id: str
    task: str
    video_id: str
    prompt: str
    answer: str
    images: tuple[str, ...] = ()  # absolute image paths, in the order they are sent
    system: str | None = None

    def request(self, model: str = "") -> ModelRequest:
        """The model request of this step, images read from disk as inference sends them."""
        return ModelRequest(
            model=model,
            prompt=self.prompt,
            images=tuple(ImageInput(Path(p).read_bytes()) for p in self.images),
            system=self.system,
        )

    def to_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "task": self.task,
            "video_id": self.video_id,
            "prompt": self.prompt,
            "answer": self.answer,
            "images": list(self.images),
            "system": self.system or "",
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TrainExample:
        return cls(
            id=row["id"],
            task=row["task"],
            video_id=row["video_id"],
            prompt=row["prompt"],
            answer=row["answer"],
            images=tuple(row["images"]),
            system=row["system"] or None,
        )


_TRAIN = TrainConfig.model_fields  # one default each, on the train config section


@dataclass(frozen=True)
class DataOptions:
    tasks: tuple[str, ...] = _TRAIN["tasks"].default
    #: "auto": as the transformers backend captions (the preset's layout, else two images).
    pair_layout: str = _TRAIN["pair_layout"].default
    progress: bool = True
    #: Prompts for sources that do not carry their own (ShareGPT4Video JSONL) — and, when
    #: given, instead of a run's own.
    prompt_preset: str | None = None
    templates: dict[str, str] = field(default_factory=dict)
    #: A ``diffcap export --format clips`` output: clip captions for the ``clip`` task.
    clip_captions: Path | None = None


@dataclass
class DataReport:
    sources: int = 0
    per_task: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    #: The prompts the examples were rendered with (preset, template overrides): a trained
    #: model should caption with the same ones.
    prompts: list[str] = field(default_factory=list)

    @property
    def examples(self) -> int:
        return sum(self.per_task.values())

    def line(self) -> str:
        tasks = ", ".join(f"{t} {n}" for t, n in sorted(self.per_task.items()))
        notes = "".join(f"; {n}" for n in self.notes)
        return f"{self.sources} source(s) -> {self.examples} examples [{tasks}]{notes}"


def from_item(item: dict[str, Any], base: Path, system: str | None = None) -> TrainExample:
    """A LLaVA conversation item (first human/gpt turn) -> a TrainExample; image paths are
    relative to ``base`` (the JSON's folder)."""
    turns = item.get("conversations") or []
    human = next((t["value"] for t in turns if t.get("from") in ("human", "user")), None)
    answer = next((t["value"] for t in turns if t.get("from") in ("gpt", "assistant")), None)
    if human is None or answer is None:
        raise ValueError("no human/gpt turn in 'conversations'")
    image = item.get("image") or item.get("images") or []
    images = [image] if isinstance(image, str) else list(image)
    return TrainExample(
        id=str(item.get("id", "")),
        task=str(item.get("task", "conversation")),
        video_id=str(item.get("video_id", item.get("id", ""))),
        prompt=strip_image_tokens(human, len(images)),
        answer=answer,
        images=tuple(str((base / p).resolve()) for p in images),
        system=item.get("system") or system,
    )


def strip_image_tokens(text: str, n_images: int) -> str:
    """The prompt without its image placeholders: ``<image>\\n`` lines (the LLaVA export puts
    one per image first) or inline ``<image>`` tokens."""
    lines = text.split("\n")
    lead = 0
    while lead < len(lines) and lines[lead].strip() == IMAGE_TOKEN:
        lead += 1
    rest = "\n".join(lines[lead:])
    found = lead + rest.count(IMAGE_TOKEN)
    if found != n_images:
        raise ValueError(f"{found} {IMAGE_TOKEN} placeholder(s) for {n_images} image(s)")
    return rest.replace(IMAGE_TOKEN, "").strip()


def load_examples(
    paths: Sequence[str | Path], opts: DataOptions, work_dir: Path
) -> tuple[list[TrainExample], DataReport]:
    """Every example of every source (in order); images built from runs go to ``work_dir``."""
    bad = [t for t in opts.tasks if t not in ALL_TASKS]
    if bad or not opts.tasks:
        raise ConfigError(
            f"--tasks: unknown task(s) {','.join(bad) or '(none)'}",
            hint=f"choose from {','.join(ALL_TASKS)}",
        )
    report = DataReport()
    examples: list[TrainExample] = []
    for n, path in enumerate(paths):
        found = list(_from_source(Path(path).expanduser(), opts, work_dir / f"src{n}", report))
        report.sources += 1
        if not found:
            report.notes.append(f"{path}: no examples")
        examples.extend(found)
    if not examples:
        raise ConfigError(
            f"no training examples in {', '.join(map(str, paths))} for tasks "
            f"{','.join(opts.tasks)}",
            hint="pass a `diffcap run` directory with captions, an export, or "
            "ShareGPT4Video-style JSONL; `diffcap export --format llava` shows per-task counts",
        )
    return examples, report


def _from_source(
    path: Path, opts: DataOptions, work: Path, report: DataReport
) -> Iterator[TrainExample]:
    kind = sources.detect(path)
    if kind in ("llava", "messages"):
        items = sources.read_items(path)
        for n, item in enumerate(items):
            try:
                ex = (
                    from_item(item, path.parent)
                    if kind == "llava"
                    else from_item(sources.messages_to_llava(item), path.parent)
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError(f"{path}: item {n}: {exc}") from exc
            if ex.task in opts.tasks or ex.task not in ALL_TASKS:  # a VQA mix is kept whole
                report.per_task[ex.task] += 1
                yield ex
        return
    records, settings = sources.records_and_settings(path, kind)
    yield from _from_records(records, settings, opts, work, report)


def _from_records(
    records: Any, settings: sources.RunSettings, opts: DataOptions, work: Path, report: DataReport
) -> Iterator[TrainExample]:
    settings = replace(
        settings,
        prompt_preset=opts.prompt_preset or settings.prompt_preset,
        templates=opts.templates or settings.templates,
    )
    ts = load_templates(settings.prompt_preset, overrides=settings.templates or None)
    export_opts = _export_options(settings, opts, ts)
    images = ImageWriter(work / "images", work, export_opts)
    overrides = "".join(f" --template {k}={v}" for k, v in sorted(settings.templates.items()))
    if f"--prompt-preset {settings.prompt_preset}{overrides}" not in report.prompts:
        report.prompts.append(f"--prompt-preset {settings.prompt_preset}{overrides}")
    text_only = ExportOptions(tasks=tuple(t for t in opts.tasks if t in TEXT_TASKS))
    clips = load_clip_captions(opts.clip_captions)
    no_frames = 0
    with progress_bar(export_opts, "training data") as bar:
        for rec in records:
            bar.update()
            writer = images
            if not sources.has_keyframe_images(rec):
                no_frames += 1
                writer = ImageWriter(work / "images", work, text_only)
            for item in llava_items(rec, ts, writer, clips.get(rec.video_id, [])):
                ex = from_item(item, work, ts.system)
                report.per_task[ex.task] += 1
                yield ex
    if no_frames:
        report.notes.append(f"{no_frames} record(s) without keyframe images: text tasks only")
        # Said loudly: a folder of published outputs (output.uri) has records but no
        # keyframes; train on the run directory to get the image tasks.
        log.warning(
            "%d record(s) have no keyframe images here: only their text tasks are trained "
            "(pass the run directory, which holds RUN_DIR/keyframes, for the image tasks)",
            no_frames,
        )


def _export_options(settings: sources.RunSettings, opts: DataOptions, ts: Any) -> ExportOptions:
    """The builder's options: the run's image sizes and layouts, as inference had them."""
    return ExportOptions(
        progress=opts.progress,
        tasks=opts.tasks,
        prompt_preset=settings.prompt_preset,
        templates=settings.templates,
        pair_layout=settings.resolve_pair_layout(opts.pair_layout, ts),
        fast_layout=settings.fast_layout,
        fast_max_frames=settings.fast_max_frames,
        fast_max_side=settings.fast_max_side,
        image_max_side=settings.image_max_side,
        clip_captions=opts.clip_captions,
    )


def split_examples(
    examples: Sequence[TrainExample], fraction: float, seed: int
) -> tuple[list[TrainExample], list[TrainExample]]:
    """(train, eval): whole videos held out (at least one when ``fraction`` > 0 and there are
    two or more videos), chosen by a seeded shuffle; with one video, examples are split."""
    if fraction <= 0:
        return list(examples), []
    videos = sorted({e.video_id for e in examples})
    rng = random.Random(seed)
    if len(videos) >= 2:
        rng.shuffle(videos)
        n_eval = min(len(videos) - 1, max(1, round(fraction * len(videos))))
        held = set(videos[:n_eval])
        return [e for e in examples if e.video_id not in held], [
            e for e in examples if e.video_id in held
        ]
    order = list(range(len(examples)))
    rng.shuffle(order)
    n_eval = min(len(order) - 1, max(1, round(fraction * len(order))))
    held_idx = set(order[:n_eval])
    train = [e for i, e in enumerate(examples) if i not in held_idx]
    return train, [e for i, e in enumerate(examples) if i in held_idx]
