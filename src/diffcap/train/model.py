"""Loading a base model to train and saving what training made (adapter, merged, full).

model, processor = load_for_training("llava-hf/llava-interleave-qwen-0.5b-hf")
model = with_lora(model, LoraSettings(r=16))
save_result(model, processor, out, base="llava-hf/...", merge=True)
"""

from __future__ import annotations

import errno
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from diffcap._deps import require
from diffcap.config import LoraConfig, ModelConfig
from diffcap.errors import ConfigError, ModelUnavailable, StorageError
from diffcap.models.transformers_backend import TransformersBackend, adapter_base, load_pretrained

log = logging.getLogger(__name__)

__all__ = ["LoraSettings", "load_for_training", "lora_config", "save_result", "start_base"]


#: The LoRA settings: the ``train.lora`` / ``dpo.lora`` config section.
LoraSettings = LoraConfig


def lora_config(s: LoraSettings) -> Any:
    peft = require("peft", extra="train", purpose="LoRA training")
    targets: Any = (
        s.target_modules
        if s.target_modules == "all-linear"
        else [t.strip() for t in s.target_modules.split(",") if t.strip()]
    )
    return peft.LoraConfig(
        r=s.r,
        lora_alpha=s.alpha,
        lora_dropout=s.dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )


def base_source(model: str) -> str:
    """A local folder as an absolute path (what an adapter records as its base), else the id."""
    p = Path(model).expanduser()
    return str(p.resolve()) if p.is_dir() else model


def load_for_training(model: str, *, quantize: str | None = None, bf16: bool = False) -> Any:
    """(model, processor) of ``model`` (hub id, folder, or an adapter folder, merged in) in
    float32 (bf16 with ``bf16``), 4-bit NF4 with ``quantize="4bit"`` (QLoRA: CUDA and
    bitsandbytes only). Fails fast when the model is not there (offline: no hub wait)."""
    torch = require("torch", extra="train", purpose="training")
    tf = require("transformers", extra="train", purpose="training")
    TransformersBackend(ModelConfig(backend="transformers", model=model)).preflight()
    kwargs: dict[str, Any] = {}
    if quantize:
        if not torch.cuda.is_available():
            raise ConfigError(
                "--quantize 4bit (QLoRA) needs a CUDA GPU", hint="train in bf16/fp32 without it"
            )
        require("bitsandbytes", extra="train", purpose="QLoRA")
        kwargs["quantization_config"] = tf.BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
    dtype = torch.bfloat16 if (bf16 or quantize) else torch.float32
    try:
        processor, net = load_pretrained(tf, base_source(model), dtype, **kwargs)
    except (OSError, ValueError, KeyError, ImportError) as exc:
        raise ModelUnavailable(
            f"cannot load model '{model}': {str(exc).splitlines()[0]}",
            hint="pass a local model folder (offline) or a hub id that is cached",
        ) from exc
    if quantize:
        net = require("peft").prepare_model_for_kbit_training(net)
    return net, processor


def save_result(model: Any, processor: Any, out: Path, *, base: str, merge: bool) -> dict[str, str]:
    """Save the trained model into ``out``: a LoRA run writes its adapter (its
    ``adapter_config.json`` naming ``base``) and, with ``merge``, the merged model in
    ``out/merged``; a full run writes the model. -> {"adapter"|"model"|"merged": path}."""
    out.mkdir(parents=True, exist_ok=True)
    saved: dict[str, str] = {}
    if hasattr(model, "peft_config"):
        model.save_pretrained(out)
        _set_adapter_base(out / "adapter_config.json", base)
        processor.save_pretrained(out)
        saved["adapter"] = str(out)
        if merge:
            merged = model.merge_and_unload()
            merged.save_pretrained(out / "merged")
            processor.save_pretrained(out / "merged")
            saved["merged"] = str(out / "merged")
    else:
        model.save_pretrained(out)
        processor.save_pretrained(out)
        saved["model"] = str(out)
    return saved


#: errno values that mean "the output folder cannot be written": a fault of the world.
_STORAGE_ERRNOS = frozenset(
    getattr(errno, n) for n in ("ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM") if hasattr(errno, n)
)


#: How libraries that wrap the OS error (safetensors, torch.save) word the same faults.
_STORAGE_WORDS = ("No space left on device", "Disk quota exceeded", "Read-only file system")


#: Below this much free space on OUT's file system a failed write is taken for a full disk
#: (torch.save reports one as "unexpected pos ...", without the OS error).
_FULL_BELOW = 16 * 1024 * 1024


def _storage_fault(exc: BaseException, out: Path) -> str | None:
    """The OS reason when ``exc`` (or what caused it) is a full / read-only / forbidden
    output, else None."""
    import shutil

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _STORAGE_ERRNOS:
            return seen.strerror or str(seen)
        words = next((w for w in _STORAGE_WORDS if w in str(seen)), None)
        if words:
            return words
        seen = seen.__cause__ or seen.__context__
    try:
        if shutil.disk_usage(out).free < _FULL_BELOW:
            return "No space left on device"
    except OSError:
        pass
    return None


@contextmanager
def storage_faults(out: Path) -> Iterator[None]:
    """A full disk or an unwritable ``out`` stops training with one line (exit 4) that says
    to rerun with ``--resume``: the finished checkpoints are kept. Safetensors and
    torch.save report these as their own errors, so the reason is read from the message."""
    try:
        yield
    except Exception as exc:
        reason = _storage_fault(exc, out)
        if reason is None:
            raise
        raise StorageError(
            f"{out}: cannot write ({reason})",
            hint="free space or fix permissions, then rerun with --resume (checkpoints are kept)",
        ) from exc


def _set_adapter_base(path: Path, base: str) -> None:
    cfg = json.loads(path.read_text(encoding="utf-8"))
    cfg["base_model_name_or_path"] = base
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True), encoding="utf-8")


def start_base(method: str, out: Path, model: Any, processor: Any, source: str) -> str:
    """What a new adapter names as its base: the starting model's folder or id — or, when
    training starts from an adapter (merged in memory; a new adapter needs a base on disk),
    that merged model, written to ``out/start``."""
    folder = Path(base_source(source))
    if method != "lora" or not folder.is_dir() or adapter_base(folder) is None:
        return base_source(source)
    log.info("writing the merged starting model to %s (the new adapter's base)", out / "start")
    model.save_pretrained(out / "start")
    processor.save_pretrained(out / "start")
    return str((out / "start").resolve())
