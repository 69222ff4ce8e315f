"""LoRA: the adapter is saved (naming its base), merged on request, and both reload to the
same model (same logits); `diffcap caption --backend transformers --model DIR` takes the
adapter folder and the merged folder; clear one-line errors for bad models and tasks."""

from __future__ import annotations

import json
import sys

import pytest

from diffcap.config import ModelConfig
from diffcap.errors import ModelUnavailable
from diffcap.models.transformers_backend import TransformersBackend, load_pretrained
from diffcap.train.collate import SFTCollator
from diffcap.train.examples import TrainExample
from support.cli import diffcap


def _batch(out, processor):
    rows = [json.loads(x) for x in (out / "data" / "examples.jsonl").read_text().splitlines()]
    picks = [next(r for r in rows if r["task"] == t) for t in ("slide", "fast", "summary")]
    return SFTCollator(processor)([TrainExample.from_row(r).to_row() for r in picks])


def test_adapter_and_merged_reload_to_the_same_model(lora_sft, tiny_llava_dir):
    import torch
    import transformers as tf
    from peft import PeftModel

    out = lora_sft.out
    m = lora_sft.metrics
    assert m["final_train_loss"] < m["initial_train_loss"]
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == str(tiny_llava_dir.resolve())
    assert (out / "adapter_model.safetensors").is_file() and not (out / "config.json").exists()
    assert (out / "merged" / "config.json").is_file()

    processor = tf.AutoProcessor.from_pretrained(out)
    batch = _batch(out, processor)
    batch.pop("labels")
    base = tf.AutoModelForImageTextToText.from_pretrained(tiny_llava_dir).eval()
    with torch.no_grad():
        plain = base(**batch).logits
        adapter = PeftModel.from_pretrained(base, out).eval()
        unmerged = adapter(**batch).logits
        merged = tf.AutoModelForImageTextToText.from_pretrained(out / "merged").eval()
        via_backend = load_pretrained(tf, str(out), torch.float32)[1].eval()
        assert torch.allclose(unmerged, merged(**batch).logits, atol=1e-5)
        assert torch.allclose(unmerged, via_backend(**batch).logits, atol=1e-5)
    assert (unmerged - plain).abs().max() > 1e-3  # the adapter changed the model


def test_caption_takes_the_adapter_and_the_merged_folder(lora_sft, teacher, tmp_path):
    video = sorted(teacher.videos.glob("*.mp4"))[0]
    got = {}
    for name, model in (("adapter", lora_sft.out), ("merged", lora_sft.out / "merged")):
        out = tmp_path / f"{name}.jsonl"
        rc = diffcap(
            "caption", str(video), "--out", str(out), "--backend", "transformers",
            "--model", str(model), "--embedder", "weightless",
        "--no-progress", "--max-tokens", "32",
        )  # fmt: skip
        assert rc == 0
        got[name] = [c["content"] for c in json.loads(out.read_text())["captions"]]
    assert got["adapter"] == got["merged"] and len(got["adapter"]) == 3


def test_an_adapter_whose_base_is_gone_fails_fast(tmp_path):
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": str(tmp_path / "nowhere")})
    )
    backend = TransformersBackend(ModelConfig(backend="transformers", model=str(folder)))
    with pytest.raises(ModelUnavailable, match="model folder not found"):
        backend.preflight()


def test_train_errors_are_one_line(teacher, tmp_path, capsys):
    rc = diffcap("train", str(teacher.run_dir), "--model", str(tmp_path / "none"),
                 "--out", str(tmp_path / "o"))  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc == 3 and "model folder not found" in err and len(err.splitlines()) == 1
    rc = diffcap(
        "train",
        str(teacher.run_dir),
        "--model",
        "nobody/not-cached-vlm",
        "--out",
        str(tmp_path / "o"),
    )  # fmt: skip (HF_HUB_OFFLINE=1 in the tests)
    err = capsys.readouterr().err.strip()
    assert rc == 3 and "not in the Hugging Face cache" in err and len(err.splitlines()) == 1
    rc = diffcap("train", str(teacher.run_dir), "--model", "x", "--out", str(tmp_path / "o"),
                 "--tasks", "fast,bogus")  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "bogus" in err
    rc = diffcap("train", str(tmp_path / "empty.json"), "--model", "x", "--out", str(tmp_path))
    assert rc == 2 and "no such run directory or data file" in capsys.readouterr().err


def test_a_missing_extra_names_the_pip_command(teacher, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "trl", None)  # import trl -> ImportError
    rc = diffcap("train", str(teacher.run_dir), "--model", "x", "--out", str(tmp_path / "o"))
    err = capsys.readouterr().err.strip()
    assert rc == 1 and "pip install 'diffcap[train]'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()  # nothing was started


def test_the_merged_folder_is_servable(lora_sft):
    """`transformers serve OUT/merged` answers OpenAI-compatible chat requests (~6 s)."""
    from diffcap.models import get_backend
    from diffcap.models.base import ModelRequest
    from support.servers import start_transformers_serve

    with start_transformers_serve(lora_sft.out / "merged") as srv:
        backend = get_backend(
            "openai", model=srv.model, api_base=srv.base_url, api_key="x", max_tokens=16
        )
        text = backend.generate(ModelRequest(model=srv.model, prompt="Summarize.")).text
    assert text.strip()
