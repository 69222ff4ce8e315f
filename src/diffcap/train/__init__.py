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

from typing import TYPE_CHECKING

from diffcap.lazyattr import lazy_attributes

__all__ = ["DPOOptions", "TrainExample", "TrainOptions", "load_examples", "train_dpo", "train_sft"]

if TYPE_CHECKING:
    from diffcap.train.dpo import DPOOptions, train_dpo
    from diffcap.train.examples import TrainExample, load_examples
    from diffcap.train.sft import TrainOptions, train_sft

_WHERE = {
    "DPOOptions": "diffcap.train.dpo",
    "train_dpo": "diffcap.train.dpo",
    "TrainExample": "diffcap.train.examples",
    "load_examples": "diffcap.train.examples",
    "TrainOptions": "diffcap.train.sft",
    "train_sft": "diffcap.train.sft",
}

__getattr__ = lazy_attributes(__name__, _WHERE, globals())
