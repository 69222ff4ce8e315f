"""Supervised fine-tuning with TRL's SFTTrainer (LoRA through PEFT, or full), the captioner
distilled from a teacher's captions.

    result = train_sft(TrainOptions(data=("runs/teacher",), model="llava-hf/...", out=Path("m")))
    result.metrics["final_train_loss"]

``OUT/checkpoints/checkpoint-N`` every ``save_steps`` (``--resume`` continues from the last
one: the model, optimizer, scheduler and RNG states, so a killed run ends where an
uninterrupted one would); ``OUT/train_metrics.json``; ``OUT/README.md`` (model card);
``OUT/data/examples.jsonl`` (every example, with its split). The result: the adapter in
``OUT`` (``OUT/merged`` with ``merge``) or the full model in ``OUT``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ConfigDict

from diffcap._deps import require
from diffcap.config import TrainConfig
from diffcap.errors import ConfigError
from diffcap.train.card import write_card, write_metrics
from diffcap.train.collate import SFTCollator
from diffcap.train.examples import DataOptions, TrainExample, load_examples, split_examples
from diffcap.train.model import (
    load_for_training,
    lora_config,
    save_result,
    start_base,
    storage_faults,
)

log = logging.getLogger(__name__)

__all__ = ["TrainOptions", "TrainResult", "train_sft"]


class TrainOptions(TrainConfig):
    """What ``diffcap train`` was asked: the ``train`` config section
    (:class:`~diffcap.config.TrainConfig`, every setting and default) plus what to train on
    and where."""

    model_config = ConfigDict(frozen=True)

    data: tuple[str, ...]
    model: str
    out: Path
    progress: bool = True

    def settings(self) -> dict[str, Any]:
        """The settings as train_metrics.json and the model card record them."""
        d = self.model_dump()
        d["out"], d["data"] = str(self.out), list(self.data)
        d["clip_captions"] = str(self.clip_captions) if self.clip_captions else None
        d["max_steps"] = self.max_steps or -1  # -1: by epochs (as recorded before)
        return d


@dataclass
class TrainResult:
    out: Path
    metrics: dict[str, Any]
    saved: dict[str, str]


def check_extras(purpose: str, lora: bool) -> None:
    """The `train` extra is there (else the pip command, before any data or weight loads)."""
    for module in ("torch", "transformers", "trl", "datasets", *(("peft",) if lora else ())):
        require(module, extra="train", purpose=purpose)


def check_options(opts: TrainOptions) -> None:
    check_extras("`diffcap train`", opts.method == "lora")
    if opts.method not in ("lora", "full"):
        raise ConfigError(f"--method {opts.method}: choose lora or full")
    if opts.quantize and opts.method != "lora":
        raise ConfigError("--quantize needs --method lora (QLoRA trains an adapter)")
    if opts.merge and opts.method != "lora":
        raise ConfigError("--merge needs --method lora (a full run already saves a model)")
    if not 0 <= opts.eval_fraction < 1:
        raise ConfigError(f"--eval-fraction {opts.eval_fraction}: must be in [0, 1)")
    ckpts = opts.out / "checkpoints"
    if not opts.resume and ckpts.is_dir() and any(ckpts.glob("checkpoint-*")):
        raise ConfigError(
            f"{opts.out} already holds checkpoints",
            hint="pass --resume to continue that run, or choose another --out",
        )


def prepare_data(opts: TrainOptions) -> tuple[list[TrainExample], list[TrainExample], Any]:
    examples, report = load_examples(
        opts.data,
        DataOptions(
            tasks=opts.tasks,
            pair_layout=opts.pair_layout,
            progress=opts.progress,
            prompt_preset=opts.prompt_preset,
            templates=dict(opts.templates),
            clip_captions=opts.clip_captions,
        ),
        opts.out / "data",
    )
    train, held = split_examples(examples, opts.eval_fraction, opts.seed)
    (opts.out / "data").mkdir(parents=True, exist_ok=True)
    held_ids = {e.id for e in held}
    with (opts.out / "data" / "examples.jsonl").open("w", encoding="utf-8") as fh:
        for e in examples:
            row = {**e.to_row(), "split": "eval" if e.id in held_ids else "train"}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    log.info("training data: %s", report.line())
    return train, held, report


def trainer_args(config_cls: Any, opts: Any, **extra: Any) -> Any:
    """``config_cls`` (SFTConfig, DPOConfig) with the settings every diffcap run shares:
    checkpoints in OUT/checkpoints, seeds, no external loggers, CPU when there is no GPU,
    our collator's columns kept."""
    torch = require("torch", extra="train")
    return config_cls(
        output_dir=str(opts.out / "checkpoints"),
        num_train_epochs=opts.epochs,
        max_steps=opts.max_steps or -1,
        learning_rate=opts.lr,
        per_device_train_batch_size=opts.batch_size,
        gradient_accumulation_steps=opts.grad_accum,
        save_strategy="steps",
        save_steps=opts.save_steps,
        logging_steps=opts.logging_steps,
        seed=opts.seed,
        data_seed=opts.seed,
        report_to=[],
        remove_unused_columns=False,
        disable_tqdm=not opts.progress,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        max_length=None,
        **extra,
    )


def sft_config(opts: TrainOptions, has_eval: bool) -> Any:
    trl = require("trl", extra="train", purpose="`diffcap train`")
    return trainer_args(
        trl.SFTConfig,
        opts,
        per_device_eval_batch_size=opts.batch_size,
        eval_strategy="epoch" if has_eval else "no",
        dataset_kwargs={"skip_prepare_dataset": True},
        bf16=opts.bf16,
        **checkpointing_kwargs(trl.SFTConfig, opts.gradient_checkpointing),
    )


def checkpointing_kwargs(config_cls: Any, enabled: bool) -> dict[str, bool]:
    """Activation (gradient) checkpointing under the name this transformers version uses
    (``gradient_checkpointing`` is a deprecated alias in 5.x)."""
    fields = getattr(config_cls, "__dataclass_fields__", {})
    name = "activation_checkpointing" if "activation_checkpointing" in fields else None
    return {name or "gradient_checkpointing": enabled}


def last_checkpoint(out: Path) -> str | None:
    """The newest complete checkpoint in ``OUT/checkpoints``: its ``trainer_state.json``
    (written last) parses. A checkpoint a kill cut short is skipped."""
    found = []
    for d in (out / "checkpoints").glob("checkpoint-*"):
        try:
            step = int(d.name.rsplit("-", 1)[1])
            json.loads((d / "trainer_state.json").read_text(encoding="utf-8"))
        except (ValueError, OSError):
            continue
        found.append((step, d))
    return str(max(found)[1]) if found else None


def keep_rng_through_evaluate(trainer: Any) -> None:
    """Evaluation leaves the random state as it found it. Trainer's evaluation draws from the
    global RNGs, and a resumed run restores the RNG state saved with the checkpoint, so
    without this a run resumed after an evaluation would draw other dropout masks than the
    uninterrupted run (measured: the losses part from the first step after the resume)."""
    import random

    import numpy as np
    import torch

    original = trainer.evaluate

    def evaluate(*args: Any, **kwargs: Any) -> Any:
        saved = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        try:
            return original(*args, **kwargs)
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.set_rng_state(saved[2])
            if cuda is not None:
                torch.cuda.set_rng_state_all(cuda)

    trainer.evaluate = evaluate


def losses(trainer: Any, train_ds: Any, eval_ds: Any, when: str) -> dict[str, float | None]:
    """Mean loss over the whole train and eval sets (the same measure before and after)."""
    out: dict[str, float | None] = {
        f"{when}_train_loss": trainer.evaluate(train_ds, metric_key_prefix="train")["train_loss"]
    }
    out[f"{when}_eval_loss"] = (
        trainer.evaluate(eval_ds, metric_key_prefix="eval")["eval_loss"] if eval_ds else None
    )
    return out


def train_sft(opts: TrainOptions) -> TrainResult:
    """The whole ``diffcap train``: data, model, TRL SFT, save, metrics, model card."""
    check_options(opts)
    t0 = time.perf_counter()
    opts.out.mkdir(parents=True, exist_ok=True)
    train, held, report = prepare_data(opts)
    model, processor = load_for_training(opts.model, quantize=opts.quantize, bf16=opts.bf16)
    base = start_base(opts.method, opts.out, model, processor, opts.model)
    datasets = require("datasets", extra="train", purpose="`diffcap train`")
    train_ds = datasets.Dataset.from_list([e.to_row() for e in train])
    eval_ds = datasets.Dataset.from_list([e.to_row() for e in held]) if held else None
    trainer = build_trainer(opts, model, processor, train_ds, eval_ds)
    metrics: dict[str, Any] = losses(trainer, train_ds, eval_ds, "initial")
    resume_from = last_checkpoint(opts.out) if opts.resume else None
    with storage_faults(opts.out):
        state = trainer.train(resume_from_checkpoint=resume_from)
    metrics.update(losses(trainer, train_ds, eval_ds, "final"))
    metrics.update(
        steps=int(state.global_step),
        train_samples=len(train),
        eval_samples=len(held),
        samples_seen=int(state.global_step) * opts.batch_size * opts.grad_accum,
        tasks=dict(report.per_task),
        prompts=list(report.prompts),
        resumed_from=resume_from,
        seconds=round(time.perf_counter() - t0, 3),
        log_history=trainer.state.log_history,
    )
    with storage_faults(opts.out):
        saved = finish("sft", opts, trainer.model, processor, base, metrics, report)
    return TrainResult(opts.out, metrics, saved)


def build_trainer(
    opts: TrainOptions, model: Any, processor: Any, train_ds: Any, eval_ds: Any
) -> Any:
    """TRL's SFTTrainer over the shared-builder collator (LoRA through PEFT, or full)."""
    trl = require("trl", extra="train", purpose="`diffcap train`")
    # Seeded before PEFT initialises the adapter (inside the trainer, before its own seeding).
    require("transformers").set_seed(opts.seed)
    trainer = trl.SFTTrainer(
        model=model,
        args=sft_config(opts, eval_ds is not None),
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=processor,
        data_collator=SFTCollator(processor),
        peft_config=lora_config(opts.lora) if opts.method == "lora" else None,
    )
    keep_rng_through_evaluate(trainer)
    return trainer


def finish(
    kind: str, opts: Any, model: Any, processor: Any, base: str, metrics: dict, report: Any
) -> dict[str, str]:
    """Save the trained model (adapter / merged / full), the metrics and the model card."""
    saved = save_result(model, processor, opts.out, base=base, merge=opts.merge)
    write_metrics(opts.out, metrics)
    write_card(
        opts.out,
        kind=kind,
        base=opts.model,
        settings=opts.settings(),
        metrics=metrics,
        report=report,
        saved=saved,
    )
    return saved
