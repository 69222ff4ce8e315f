"""Training the captioner on diffcap's captions (the ShareCaptioner-Video recipe).

Caption a sample with a strong model (``diffcap run``), fine-tune an open vision-language
model on the result (:func:`train_sft`: TRL SFT, LoRA through PEFT or full), caption the
rest with it (``diffcap caption --backend transformers --model OUT``), and preference-tune it
on blind reviews (:func:`train_dpo`: TRL DPO on ``diffcap review`` votes). Examples are built
by the export builder and rendered by the inference path's own prompt builder
(:mod:`diffcap.models.chat`), so a trained model sees at inference what it was trained on.

    from diffcap.train import TrainOptions, train_sft
    result = train_sft(TrainOptions(data=("runs/teacher",), model="llava-hf/...", out=Path("m")))

Needs the ``train`` extra (trl, peft, datasets, accelerate; torch and transformers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["DPOOptions", "TrainExample", "TrainOptions", "load_examples", "train_dpo", "train_sft"]

if TYPE_CHECKING:
    from diffcap.train.dpo import DPOOptions, train_dpo
    from diffcap.train.examples import TrainExample, load_examples
    from diffcap.train.sft import TrainOptions, train_sft

_WHERE = {
    "DPOOptions": "dpo",
    "train_dpo": "dpo",
    "TrainExample": "examples",
    "load_examples": "examples",
    "TrainOptions": "sft",
    "train_sft": "sft",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'diffcap.train' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"diffcap.train.{_WHERE[name]}"), name)
