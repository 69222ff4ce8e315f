"""Preference tuning from blind reviews: ``review`` votes -> (prompt, chosen, rejected) pairs
-> TRL's DPOTrainer on top of the SFT model.

A vote says which of two systems' summaries of one video a reviewer preferred. The pair's
prompt is the captioner's own input for that summary, built from one run (``prompt_run``,
default: the first run) by the shared builder: ``fast`` (the keyframe grid -> the summary)
or ``summary`` (slide mode's time-stamped captions -> the summary). Ties are dropped and
counted; votes on systems that are not among the runs are counted as unmatched.

    pairs, report = preference_pairs(Path("votes.sqlite"), ["runs/gpt4v", "runs/local"],
                                     task="fast", work=Path("out/data"))
    result = train_dpo(DPOOptions(votes=..., runs=(...), model="out/sft", out=Path("out/dpo")))
    result.metrics["initial_margin"], result.metrics["final_margin"]
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import ConfigDict

from diffcap._deps import require
from diffcap.config import DPOConfig
from diffcap.errors import ConfigError
from diffcap.export.records import open_records, system_names
from diffcap.store.votes import VoteStore
from diffcap.train.collate import DPOCollator
from diffcap.train.examples import DataOptions, TrainExample, load_examples
from diffcap.train.model import (
    load_for_training,
    lora_config,
    start_base,
    storage_faults,
)
from diffcap.train.sft import TrainResult, check_extras, checkpointing_kwargs, finish, trainer_args

log = logging.getLogger(__name__)

__all__ = ["DPOOptions", "PairReport", "preference_margin", "preference_pairs", "train_dpo"]


@dataclass
class PairReport:
    votes: int = 0
    pairs: int = 0
    ties: int = 0
    unmatched: int = 0  # votes on a system that is not among the runs
    no_prompt: int = 0  # the prompt run has no example of the task for that video

    def line(self) -> str:
        return (
            f"{self.votes} votes -> {self.pairs} preference pairs ({self.ties} ties dropped, "
            f"{self.unmatched} on other systems, {self.no_prompt} without a prompt)"
        )


class DPOOptions(DPOConfig):
    """What ``diffcap train-dpo`` was asked: the ``dpo`` config section
    (:class:`~diffcap.config.DPOConfig`, every setting and default) plus the votes, the runs,
    the model and the output folder."""

    model_config = ConfigDict(frozen=True)

    votes: Path
    runs: tuple[str, ...]
    model: str
    out: Path
    progress: bool = True

    def settings(self) -> dict[str, Any]:
        """The settings as train_metrics.json and the model card record them."""
        d = self.model_dump()
        d.update(out=str(self.out), votes=str(self.votes), data=[str(self.votes), *self.runs])
        d["max_steps"] = self.max_steps or -1  # -1: by epochs (as recorded before)
        return d


def _summaries(runs: list[str]) -> dict[str, dict[str, str]]:
    """system name (as ``review`` names it) -> video id -> summary caption."""
    names = system_names([Path(r) for r in runs])
    out: dict[str, dict[str, str]] = {}
    for run, name in zip(runs, names, strict=True):
        out[name] = {
            rec.video_id: rec.summary.content
            for rec in open_records(run)
            if rec.summary is not None
        }
    return out


def preference_pairs(
    votes: Path, runs: list[str], *, task: str, work: Path, prompt_run: str | None = None
) -> tuple[list[dict[str, Any]], PairReport]:
    """Rows for :class:`~diffcap.train.collate.DPOCollator`: the prompt example's row plus
    ``chosen`` and ``rejected`` (one per non-tie vote)."""
    if task not in ("fast", "summary"):
        raise ConfigError(f"--task {task}: choose fast or summary")
    if not votes.is_file():
        raise ConfigError(f"{votes}: no vote database", hint="vote first with `diffcap review`")
    store = VoteStore(votes)
    all_votes = store.votes()
    store.close()
    summaries = _summaries(runs)
    examples, _ = load_examples([prompt_run or runs[0]], DataOptions(tasks=(task,)), work)
    prompt_of: dict[str, TrainExample] = {e.video_id: e for e in examples}
    report, rows = PairReport(votes=len(all_votes)), []
    for v in all_votes:
        if v.winner is None:
            report.ties += 1
            continue
        loser = v.system_b if v.winner == v.system_a else v.system_a
        chosen = summaries.get(v.winner, {}).get(v.video_id)
        rejected = summaries.get(loser, {}).get(v.video_id)
        if chosen is None or rejected is None:
            report.unmatched += 1
            continue
        if v.video_id not in prompt_of:
            report.no_prompt += 1
            continue
        row = prompt_of[v.video_id].to_row()
        rows.append({**row, "answer": chosen, "chosen": chosen, "rejected": rejected})
    report.pairs = len(rows)
    if not rows:
        raise ConfigError(
            f"no preference pairs: {report.line()}",
            hint="pass the runs that were reviewed (as given to `diffcap review`) and --db",
        )
    return rows, report


def preference_margin(model: Any, processor: Any, rows: list[dict[str, Any]]) -> float:
    """Mean over pairs of log p(chosen | prompt) - log p(rejected | prompt) (summed over the
    answer tokens, EOS included), with the same inputs the trainer sees."""
    torch = require("torch")

    collate = DPOCollator(processor)
    margins = []
    model.eval()
    with torch.no_grad():
        for row in rows:
            batch = collate([row])
            mask = batch.pop("completion_mask")
            batch = {k: v.to(model.device) for k, v in batch.items()}
            logits = model(**batch).logits[:, :-1].float()
            targets = batch["input_ids"][:, 1:]
            logp = torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            per_seq = (logp * mask[:, 1:].to(logp.device)).sum(-1)
            margins.append(float(per_seq[0] - per_seq[1]))
    return sum(margins) / len(margins)


def dpo_config(opts: DPOOptions) -> Any:
    trl = require("trl", extra="train", purpose="`diffcap train-dpo`")
    return trainer_args(
        trl.DPOConfig, opts, beta=opts.beta, **checkpointing_kwargs(trl.DPOConfig, False)
    )


def train_dpo(opts: DPOOptions) -> Any:
    """The whole ``diffcap train-dpo``: pairs, model, TRL DPO, save, metrics, model card."""
    check_extras("`diffcap train-dpo`", opts.method == "lora")
    t0 = time.perf_counter()
    opts.out.mkdir(parents=True, exist_ok=True)
    rows, report = preference_pairs(
        opts.votes, list(opts.runs), task=opts.task, work=opts.out / "data",
        prompt_run=opts.prompt_run,
    )  # fmt: skip
    log.info("preference data: %s", report.line())
    model, processor = load_for_training(opts.model)
    base = start_base(opts.method, opts.out, model, processor, opts.model)
    initial = preference_margin(model, processor, rows)
    datasets = require("datasets", extra="train")
    trl = require("trl", extra="train")
    # Seeded before PEFT initialises the adapter (inside the trainer, before its own seeding).
    require("transformers").set_seed(opts.seed)
    trainer = trl.DPOTrainer(
        model=model,
        args=dpo_config(opts),
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=processor,
        data_collator=DPOCollator(processor),
        peft_config=lora_config(opts.lora) if opts.method == "lora" else None,
    )
    with storage_faults(opts.out):
        state = trainer.train()
    metrics: dict[str, Any] = {
        "initial_margin": initial,
        "final_margin": preference_margin(trainer.model, processor, rows),
        "steps": int(state.global_step),
        "train_samples": len(rows),
        "tasks": dict(Counter(r["task"] for r in rows)),
        "pairs": asdict(report),
        "seconds": round(time.perf_counter() - t0, 3),
        "log_history": trainer.state.log_history,
    }
    with storage_faults(opts.out):
        saved = finish("dpo", opts, trainer.model, processor, base, metrics, report)
    return TrainResult(opts.out, metrics, saved)
