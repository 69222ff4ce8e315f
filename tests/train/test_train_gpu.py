"""GPU-only paths: QLoRA (4-bit NF4 base through bitsandbytes + a LoRA adapter) and bf16
training. Marked `gpu` (skipped by default; run with `-m gpu` on a CUDA machine)."""

from __future__ import annotations

import json

import pytest

from diffcap.train.model import LoraSettings
from diffcap.train.sft import TrainOptions, train_sft

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def _opts(teacher, model, out, **kw) -> TrainOptions:
    return TrainOptions(
        data=(str(teacher.run_dir),), model=str(model), out=out, max_steps=20, lr=1e-2,
        batch_size=4, eval_fraction=0, save_steps=100, progress=False,
        lora=LoraSettings(r=8, alpha=16, dropout=0.0), **kw,
    )  # fmt: skip


def test_qlora_4bit_adapter_trains_and_reloads(teacher, tiny_llava_dir, tmp_path):
    pytest.importorskip("bitsandbytes")
    out = tmp_path / "qlora"
    result = train_sft(_opts(teacher, tiny_llava_dir, out, method="lora", quantize="4bit"))
    m = result.metrics
    assert m["final_train_loss"] < m["initial_train_loss"]
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == str(tiny_llava_dir.resolve())
    card = (out / "README.md").read_text()
    assert "- quantize: 4bit" in card


def test_bf16_full_training(teacher, tiny_llava_dir, tmp_path):
    out = tmp_path / "bf16"
    result = train_sft(_opts(teacher, tiny_llava_dir, out, method="full", bf16=True))
    m = result.metrics
    assert m["final_train_loss"] < m["initial_train_loss"] / 2
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
