"""What every benchmark is: items read from its official files, one async ``evaluate`` per
item, and ``aggregate`` over the predictions.

    bench = get_benchmark("mvbench")
    items = bench.load(Path("MVBench/json"))           # BenchmarkFileError names file/line/field
    pred = await bench.evaluate(item, ctx)            # {"id", "raw", "extracted", "correct", ...}
    scores = bench.aggregate(preds)                   # {"overall": {...}, "by": {...}}

A benchmark holds no model: ``EvalContext`` gives it the model under test (``ask``), the
judge (``judge``) and the item's inputs (images or the caption), all behind the run store's
request cache, so a rerun replays every finished call.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from diffcap.errors import ConfigError
from diffcap.models.base import Backend, ImageInput, ModelRequest

T = TypeVar("T")

__all__ = [
    "BenchSettings",
    "Benchmark",
    "BenchmarkFileError",
    "EvalContext",
    "EvalItem",
    "read_json",
    "read_jsonl",
    "require_field",
]


class BenchmarkFileError(ConfigError):
    """A benchmark file that is missing or malformed (the message names file, line, field)."""

    reason = "benchmark_file"


@dataclass(frozen=True)
class EvalItem:
    """One scored unit: a question (QA benchmarks) or a video's reference (caption ones)."""

    item_id: str
    #: The video this item is about: an id or file name, matched to --videos and captions.
    video: str
    question: str = ""
    answer: str = ""
    #: Dimension name -> value, the breakdowns of scores.json ({"task": "action_sequence"}).
    dims: dict[str, str] = field(default_factory=dict)
    #: What else the scorer needs (options, events, QA pairs, spans), JSON-able.
    data: dict[str, Any] = field(default_factory=dict)
    #: Where the item came from, for error messages: "file:line".
    where: str = ""


@dataclass(frozen=True)
class BenchSettings:
    """How a benchmark is run and scored, beyond its files (``diffcap eval`` options)."""

    #: Score exactly as the official code, its plainly broken quirks included (diffcap's
    #: documented deviations off).
    official_quirks: bool = False
    #: Video-MME: the folder of ``<videoID>.srt`` subtitles (the "w/ subs" setting).
    subtitles: str | None = None
    #: A benchmark's own prompt file that diffcap does not ship (TempCompass's
    #: ``prompt_templates.py``, CC BY-NC 4.0); found beside ``--data`` when None.
    prompts: str | None = None


@dataclass
class EvalContext:
    """What one item's evaluation may use; every call is cached by the run store."""

    model: Backend | None
    judge: Backend | None
    images: tuple[ImageInput, ...] = ()
    caption: str | None = None
    input_mode: str = "grid"
    #: Pre-prompt of the input mode (the grid's, or a caption preamble), if any.
    preamble: str = ""
    max_tokens: int = 512
    seed: int = 0
    #: Where an answer prefill goes: "assistant" (the reply starts with it: backends that
    #: continue an assistant turn) or "user" (appended to the question: the nearest form).
    prefill_mode: str = "user"
    #: Times (s) of the frames in ``images``, when known (Video-MME's subtitles use them).
    times: tuple[float, ...] | None = None

    async def ask(
        self,
        prompt: str,
        *,
        system: str | None = None,
        max_tokens: int = 0,
        prefill: str = "",
    ) -> str:
        """The model under test answers ``prompt`` from the item's inputs (temperature 0).
        An empty answer is an answer (``""``), never an error. ``prefill``: the text the
        official script starts the reply with (not part of the returned answer)."""
        if self.model is None:
            raise ConfigError("this benchmark needs --model", hint="pass --model NAME")
        text = prompt
        if self.input_mode == "caption":
            text = f"{self.preamble}{self.caption or ''}\n\n{prompt}"
        elif self.preamble:
            text = f"{self.preamble}\n{prompt}"
        extra: dict[str, Any] = {"allow_empty": True}
        if prefill and self.prefill_mode == "assistant":
            extra["prefill"] = prefill
        elif prefill:
            text = f"{text}{prefill}"
        images = () if self.input_mode == "caption" else self.images
        return await _call(self.model, text, system, images, max_tokens or self.max_tokens, extra)

    async def ask_judge(self, prompt: str, *, system: str | None = None, attempt: int = 0) -> str:
        """The judge answers a text-only prompt: at temperature 0, and a retry (``attempt``
        > 0, a request of its own in the cache) at 1.0, the API default the releases used."""
        if self.judge is None:
            raise ConfigError(
                "this benchmark needs a judge", hint="pass --judge-model (and --judge-api-base)"
            )
        extra: dict[str, Any] = {"allow_empty": True}
        if attempt:
            extra.update(attempt=attempt, temperature=1.0)
        return await _call(self.judge, prompt, system, (), 1024, extra)

    async def judge_until(
        self, prompt: str, parse: Callable[[str], T], *, system: str | None = None, tries: int
    ) -> tuple[T, str, int]:
        """The official judge loops: ask, parse, and ask again while the answer cannot be
        parsed, ``tries`` calls at most. Returns (parsed, the answer, calls made); raises the
        last :class:`~diffcap.eval.judges.JudgeAnswerError` when every call failed."""
        from diffcap.eval.judges import JudgeAnswerError  # lazy: start-up

        error = JudgeAnswerError("no judge call was made")
        for attempt in range(tries):
            said = await self.ask_judge(prompt, system=system, attempt=attempt)
            try:
                return parse(said), said, attempt + 1
            except JudgeAnswerError as exc:
                error = exc
        raise JudgeAnswerError(f"{error} (after {tries} judge calls)")


async def _call(
    backend: Backend,
    prompt: str,
    system: str | None,
    images: tuple[ImageInput, ...],
    max_tokens: int,
    extra: dict[str, Any],
) -> str:
    options = {"temperature": 0.0, "max_tokens": max_tokens, **extra}
    request = ModelRequest(
        model=backend.model,
        prompt=prompt,
        images=images,
        system=system,
        options=ModelRequest.make_options(options),
    )
    return (await backend.agenerate(request)).text


class Benchmark(ABC):
    """Base class of the benchmarks (one module each under ``diffcap.eval``)."""

    name: ClassVar[str]
    #: Scores captions (DREAM-1K, VDC) rather than answers of a model looking at the video.
    scores_captions: ClassVar[bool] = False
    #: What the chart plots: (scores.json key under "overall", label).
    headline: ClassVar[tuple[str, str]] = ("accuracy", "accuracy")
    #: The dimension the chart breaks the headline down by.
    chart_dim: ClassVar[str] = "task"
    #: The "overall" key of the chart's first bar, when not the headline key.
    overall_key: ClassVar[str | None] = None

    def __init__(self, settings: BenchSettings | None = None) -> None:
        self.settings = settings or BenchSettings()

    @abstractmethod
    def load(self, path: Path) -> list[EvalItem]:
        """Items from the official file(s) at ``path``; raises BenchmarkFileError."""

    def prepare(self, data: Path, items: list[EvalItem], has_judge: bool) -> list[EvalItem]:
        """Checks and settings that need the files and the run's options, on the driver
        before any call (may update ``self.settings``); returns the items to evaluate."""
        return items

    @abstractmethod
    async def evaluate(self, item: EvalItem, ctx: EvalContext) -> dict[str, Any]:
        """One item's prediction: at least ``raw`` and ``correct`` or ``score``."""

    @abstractmethod
    def aggregate(self, preds: list[dict[str, Any]]) -> dict[str, Any]:
        """scores.json's numbers: ``overall`` and ``by`` dimension, with counts."""

    def metric(self, pred: dict[str, Any]) -> float:
        """The per-item number eval-compare bootstraps (accuracy: 1/0)."""
        return float(pred.get("correct") or 0)

    def statistic(self, preds: list[dict[str, Any]]) -> float | None:
        """The headline number of a list of predictions (what eval-compare resamples)."""
        values = [self.metric(p) for p in preds]
        return sum(values) / len(values) if values else None


# --- reading official files ------------------------------------------------------------------


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) per non-blank line; a bad line raises BenchmarkFileError."""
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise BenchmarkFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    with fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BenchmarkFileError(
                    f"{path}:{n}: not valid JSON ({exc.msg} at column {exc.colno})"
                ) from None
            if not isinstance(obj, dict):
                raise BenchmarkFileError(f"{path}:{n}: expected a JSON object per line")
            yield n, obj


def read_json(path: Path) -> Any:
    """A whole JSON file; invalid JSON raises BenchmarkFileError naming the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BenchmarkFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BenchmarkFileError(
            f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})"
        ) from None


def require_field(obj: Any, key: str, where: str, kind: type | tuple[type, ...] = str) -> Any:
    """``obj[key]`` when present and of ``kind``, else BenchmarkFileError naming ``where``."""
    if not isinstance(obj, dict) or key not in obj:
        raise BenchmarkFileError(f"{where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise BenchmarkFileError(
            f"{where}: field {key!r} should be {names}, not {type(value).__name__}"
        )
    return value


def named_files(path: Path, names: tuple[str, ...], suffix: str, what: str) -> list[Path]:
    """The files ``<name><suffix>`` present in folder ``path``, or the one file ``path``;
    each file's stem must be one of ``names`` (the task or dimension it holds)."""
    need_path(path, f"{what} folder or file")
    if path.is_dir():
        files = [path / f"{n}{suffix}" for n in names if (path / f"{n}{suffix}").is_file()]
        if not files:
            listed = ", ".join(n + suffix for n in names)
            raise BenchmarkFileError(f"{path}: none of {listed} ({what})")
        return files
    if path.stem not in names:
        raise BenchmarkFileError(
            f"{path}: unknown {what} file {path.stem!r}; one of {', '.join(names)}"
        )
    return [path]


def need_path(path: Path, what: str) -> Path:
    if not path.exists():
        raise BenchmarkFileError(f"{path}: no such {what}", hint="see docs/eval.md for the files")
    return path
