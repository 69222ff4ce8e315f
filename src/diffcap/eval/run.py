"""``diffcap eval``: a benchmark's items as rows through the engine, over one run store.

    report = run_eval(EvalSpec("mvbench", Path("MVBench/json"), Path("evals/mv"),
                               videos=Path("MVBench/video")), cfg)
    report.exit_code, report.scores_path

The stage list is ``[eval_inputs] -> eval_answer`` (``eval_inputs`` only for the image input
modes), run by the executor of ``engine.engine`` (local or Ray) with the engine's run control,
over ``OUT/eval.sqlite``:
per-item results are committed as they finish, and every model and judge call goes through
the store's request cache, so a killed eval resumes and sends only the calls it had not
finished. ``OUT/predictions.jsonl``, ``OUT/scores.json`` and ``OUT/<bench>.png`` are rebuilt
from the store at the end of every run. Caption input (and the caption benchmarks without
``--captions``) first captions the videos with a ``diffcap run`` in ``OUT/captions.run``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffcap.config import ModelConfig, RunConfig
from diffcap.config.eval import EvalConfig
from diffcap.engine.job import Job, locked_store, storage_errors
from diffcap.engine.rows import VideoRow
from diffcap.engine.stage import Stage
from diffcap.errors import EXIT_CODES, ConfigError
from diffcap.eval.base import Benchmark, BenchmarkFileError, BenchSettings, EvalItem
from diffcap.eval.captions import CaptionTable, caption_videos
from diffcap.eval.hubdata import hub_data, is_hub_data
from diffcap.eval.inputs import INPUT_MODES, VideoIndex
from diffcap.eval.outputs import write_outputs
from diffcap.eval.registry import get_benchmark
from diffcap.eval.stages import (
    EvalAnswerStage,
    EvalInputStage,
    EvalJob,
    replace_model,
)
from diffcap.models.identity import model_fingerprint
from diffcap.store import RunStore, VideoEntry
from diffcap.store.rundir import RunDir

log = logging.getLogger(__name__)

__all__ = ["PREFILL_MODES", "EvalReport", "EvalSpec", "run_eval"]

PREFILL_MODES = ("auto", "assistant", "user")


class EvalSpec(EvalConfig):
    """What ``diffcap eval`` was asked (besides the RunConfig of the model under test): the
    benchmark, its data and the eval directory, plus the ``eval`` config section (one
    definition of every setting and default: :class:`~diffcap.config.eval.EvalConfig`).

        EvalSpec("mvbench", Path("MVBench/json"), Path("evals/mv"), input_mode="grid")
    """

    bench: str
    data: Path
    out: Path

    def __init__(
        self, bench: str | None = None, data: Any = None, out: Any = None, /, **values: Any
    ) -> None:
        given = {"bench": bench, "data": data, "out": out}
        super().__init__(**{k: v for k, v in given.items() if v is not None}, **values)


@dataclass
class EvalReport:
    out: Path
    bench: str
    counts: dict[str, int]
    overall: dict[str, Any]
    files: dict[str, str]
    stop_reason: str | None = None
    #: Items deferred by this run (a fault of the world, the cost cap): a rerun retries them.
    deferred: int = 0
    #: Internal errors (tracebacks in OUT/logs/errors.log).
    bugs: int = 0
    requests: int = 0
    replayed: int = 0
    wall_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        if self.bugs:
            return EXIT_CODES["bug"]
        if self.stop_reason == "config":
            return EXIT_CODES["usage"]
        if self.stop_reason or self.deferred:
            return EXIT_CODES["stopped"]
        return EXIT_CODES["ok"]

    def format(self) -> str:
        c = self.counts
        lines = [
            f"{self.bench}: {c['scored']} of {c['items']} items scored, {c['failed']} failed, "
            f"{c['pending']} pending, {c['missing']} without input "
            f"({self.requests} new model calls, {self.replayed} replayed, {self.wall_s:.1f} s)"
        ]
        shown = {k: v for k, v in self.overall.items() if isinstance(v, float)}
        lines += [f"  {k}: {v:.4f}" for k, v in shown.items()]
        lines += [f"  {k}: {v}" for k, v in self.files.items()]
        if self.stop_reason or self.deferred:
            why = self.stop_reason or f"{self.deferred} items deferred"
            lines.append(f"stopped ({why}); rerun the same command to resume")
        if self.bugs:
            lines.append(f"{self.bugs} internal errors: see {self.out / 'logs' / 'errors.log'}")
        return "\n".join(lines)


def run_eval(spec: EvalSpec, cfg: RunConfig, *, progress: bool = True) -> EvalReport:
    """Run (or resume) one benchmark eval in ``spec.out``. Raises ConfigError (bad files or
    options), ModelUnavailable (before any item is sent), RunDirLocked, StorageError."""
    t0 = time.perf_counter()
    # Absolute: on Ray, workers on other nodes resolve the eval dir and videos themselves.
    spec = spec.model_copy(
        update={
            "out": spec.out.absolute(),
            "videos": spec.videos.absolute() if spec.videos else None,
        }
    )
    bench = get_benchmark(spec.bench, _settings(spec))
    if (spec.judge_api_base or spec.judge_api_key) and not spec.judge_model:
        raise ConfigError("--judge-api-base / --judge-api-key need --judge-model")
    mode = spec.input_mode or ("caption" if bench.scores_captions else "grid")
    if mode not in INPUT_MODES:
        raise ConfigError(f"unknown --input {mode!r}", hint=f"one of {', '.join(INPUT_MODES)}")
    if is_hub_data(spec.data):
        spec = spec.model_copy(update={"data": hub_data(str(spec.data))})
    items = bench.load(spec.data)
    _unique(items)
    items = bench.prepare(spec.data, items, bool(spec.judge_model))
    if spec.limit is not None:
        items = items[: spec.limit]
    with (
        storage_errors(spec.out, RunDir(spec.out).eval_db),
        locked_store(spec.out, RunDir(spec.out).eval_db, "diffcap eval", cfg.engine) as store,
    ):
        return _run_locked(store, bench, spec, cfg, items, mode, progress, t0)


def _settings(spec: EvalSpec) -> BenchSettings:
    if spec.subtitles is not None and not spec.subtitles.is_dir():
        raise ConfigError(f"--subtitles {spec.subtitles}: no such folder")
    if spec.subtitles is not None and spec.bench != "videomme":
        raise ConfigError("--subtitles is Video-MME's", hint="drop --subtitles")
    return BenchSettings(
        official_quirks=spec.official_quirks,
        subtitles=str(spec.subtitles.absolute()) if spec.subtitles else None,
        prompts=str(spec.prompts.absolute()) if spec.prompts else None,
    )


def _unique(items: list[EvalItem]) -> None:
    seen: dict[str, EvalItem] = {}
    for it in items:
        if it.item_id in seen:
            raise BenchmarkFileError(
                f"{it.where}: item {it.item_id!r} appears twice (first at {seen[it.item_id].where})"
            )
        seen[it.item_id] = it


def _run_locked(
    store: RunStore,
    bench: Benchmark,
    spec: EvalSpec,
    cfg: RunConfig,
    items: list[EvalItem],
    mode: str,
    progress: bool,
    t0: float,
) -> EvalReport:
    job, missing = _job(bench, spec, cfg, items, mode, progress)
    signature = _bind(store, spec, job)
    store.add_videos([VideoEntry(i, f"{spec.data.resolve()}#{i}") for i in job.items], strict=False)
    rows = [VideoRow.new(v) for v in store.videos(["pending"]) if v["video_id"] in job.items]
    stages: list[Stage] = [EvalAnswerStage(cfg, spec.out, job)]
    if mode != "caption":
        stages.insert(0, EvalInputStage(cfg, spec.out, job))
    # The executor of engine.engine, as for diffcap run: local, or Ray (a cluster's model
    # pools answer the items; the eval dir must be on storage every node sees).
    runner = Job(stages, cfg, store=store, run_dir=spec.out, rows=rows)
    runner.check()  # a closed port fails here, before any item
    before = (store.spend()["requests"], store.replays())
    result = runner.run(progress=progress)
    extra = {"caption_provenance": job.caption_provenance} if job.caption_provenance else {}
    counts, overall, files = write_outputs(
        store, bench, items, missing, {**signature, **extra}, spec.out
    )
    return EvalReport(
        out=spec.out,
        bench=bench.name,
        counts=counts,
        overall=overall,
        files=files,
        stop_reason=result.control.stop_reason(),
        deferred=result.counts["deferred"],
        bugs=result.bugs,
        requests=store.spend()["requests"] - before[0],
        replayed=store.replays() - before[1],
        wall_s=time.perf_counter() - t0,
    )


def _job(
    bench: Benchmark,
    spec: EvalSpec,
    cfg: RunConfig,
    items: list[EvalItem],
    mode: str,
    progress: bool,
) -> tuple[EvalJob, list[str]]:
    """The items that have their inputs (videos found, captions matched) and the ids of
    those that have not; the model and judge settings."""
    job = EvalJob(
        bench.name, mode, {}, n_frames=spec.n_frames, seed=spec.seed, settings=bench.settings
    )
    missing: list[str] = []
    if mode == "caption":
        table = _captions(spec, cfg, items, progress)
        job.caption_provenance = table.provenance
        for it in items:
            text = table.find(it.data.get("keys") or [it.video])
            if text is None:
                missing.append(it.item_id)
            else:
                job.items[it.item_id], job.captions[it.item_id] = it, text
    else:
        index = _index(spec, mode)
        for it in items:
            path = index.find(str(it.data.get("video_file") or it.video))
            if path is None:
                missing.append(it.item_id)
            else:
                job.items[it.item_id], job.videos[it.item_id] = it, str(path)
    job.model, job.judge = _models(bench, spec, cfg, mode)
    auto = "assistant" if job.model is not None and job.model.backend == "transformers" else "user"
    job.prefill_mode = auto if spec.prefill == "auto" else spec.prefill
    if missing:
        log.warning(
            "%d of %d items have no %s; they are not scored",
            len(missing),
            len(items),
            "caption" if mode == "caption" else "video",
        )
    return job, missing


def _index(spec: EvalSpec, mode: str) -> VideoIndex:
    if spec.videos is None:
        raise ConfigError(
            f"--input {mode} needs the benchmark's videos",
            hint="pass --videos DIR (or --input caption with --captions RUN_DIR_OR_JSONL)",
        )
    if not spec.videos.is_dir():
        raise ConfigError(f"--videos {spec.videos}: no such folder")
    return VideoIndex(spec.videos)


def _captions(
    spec: EvalSpec, cfg: RunConfig, items: list[EvalItem], progress: bool
) -> CaptionTable:
    if spec.captions is not None:
        return CaptionTable.load(spec.captions)
    if spec.videos is None:
        raise ConfigError(
            "caption input needs captions",
            hint="pass --captions RUN_DIR_OR_JSONL, or --videos DIR to caption them with a "
            "diffcap run first",
        )
    index = _index(spec, "caption")
    paths = {
        str(p) for it in items if (p := index.find(str(it.data.get("video_file") or it.video)))
    }
    run_dir = spec.out / "captions.run"
    report = caption_videos(sorted(Path(p) for p in paths), run_dir, cfg, progress=progress)
    if report.stop_reason:
        log.warning("the caption run stopped (%s); scoring what it captioned", report.stop_reason)
    return CaptionTable.load(run_dir)


def _models(
    bench: Benchmark, spec: EvalSpec, cfg: RunConfig, mode: str
) -> tuple[ModelConfig | None, ModelConfig | None]:
    """(model under test or the answering text model, judge), both at temperature 0."""
    model: ModelConfig | None = None
    if mode != "caption":
        model = replace_model(cfg.model)
    elif not bench.scores_captions:
        same = spec.answer_api_base in (None, cfg.model.api_base)
        model = replace_model(
            cfg.model,
            model=spec.answer_model,
            api_base=spec.answer_api_base,
            api_key=cfg.model.api_key if same else None,
        )
    judge = None
    if bench.scores_captions and not spec.judge_model:
        raise ConfigError(f"{bench.name} needs a judge", hint="pass --judge-model NAME")
    if spec.judge_model:
        same = spec.judge_api_base in (None, cfg.model.api_base)
        judge = replace_model(
            cfg.model,
            model=spec.judge_model,
            api_base=spec.judge_api_base,
            api_key=spec.judge_api_key or (cfg.model.api_key if same else None),
            backend="openai",
        )
    return model, judge


def _bind(store: RunStore, spec: EvalSpec, job: EvalJob) -> dict[str, Any]:
    """What the results in ``OUT`` depend on; a rerun that changes it is refused."""
    signature = {
        "benchmark": job.bench,
        "data": str(spec.data.resolve()),
        "input": job.input_mode,
        "model": job.model.model if job.model else None,
        "model_backend": job.model.backend if job.model else None,
        "judge": job.judge.model if job.judge else None,
        "judge_api_base": job.judge.api_base if job.judge else None,
        "n_frames": job.n_frames if job.input_mode == "frames" else None,
        "seed": job.seed,
        "captions": str(spec.captions.resolve()) if spec.captions else None,
        # a model retrained into the same folder is another model (its answers differ)
        "model_identity": model_fingerprint(job.model.model) if job.model else None,
    }
    # Added only when set, so eval dirs made before these options still resume.
    extra = {
        "official_quirks": job.settings.official_quirks or None,
        "subtitles": job.settings.subtitles,
        "prefill": job.prefill_mode if job.prefill_mode != "user" else None,
    }
    signature.update({k: v for k, v in extra.items() if v is not None})
    stored = store.get_meta("eval")
    if stored is not None:  # an eval stored before identities existed is not refused
        stored = {"model_identity": signature["model_identity"], **stored}
    if stored is not None and stored != signature:
        changed = [k for k in sorted({*stored, *signature}) if stored.get(k) != signature.get(k)]
        raise ConfigError(
            f"{spec.out} holds another eval (changed: {', '.join(changed)})",
            hint="use another --out for another model, judge, input or benchmark",
        )
    store.set_meta("eval", signature)
    return signature
