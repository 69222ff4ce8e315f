"""``OUT/train_metrics.json`` and the ``OUT/README.md`` model card of a training run.

write_metrics(out, {"initial_train_loss": 5.1, "final_train_loss": 0.2, ...})
write_card(out, kind="sft", base="llava-hf/...", settings={...}, metrics={...},
           report=data_report, saved={"adapter": "out"})
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from diffcap import __version__
from diffcap.fsutil import atomic_open

__all__ = ["write_card", "write_metrics"]

_KINDS = {
    "sft": "supervised fine-tuning (TRL SFTTrainer) on diffcap's captioning tasks",
    "dpo": "preference tuning (TRL DPOTrainer) on blind-review votes",
}
_SHOWN = (
    "method", "epochs", "max_steps", "lr", "batch_size", "grad_accum", "eval_fraction",
    "tasks", "pair_layout", "seed", "lora", "quantize", "bf16", "beta",
)  # fmt: skip


def write_metrics(out: Path, metrics: dict[str, Any]) -> Path:
    path = out / "train_metrics.json"
    with atomic_open(path) as fh:
        json.dump(metrics, fh, indent=2, sort_keys=True, default=str)
    return path


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return "–" if value is None else str(value)


def write_card(
    out: Path,
    *,
    kind: str,
    base: str,
    settings: dict[str, Any],
    metrics: dict[str, Any],
    report: Any,
    saved: dict[str, str],
) -> Path:
    """A model card: what the model is, what it was trained on, how, and how it did."""
    lines = [
        "---",
        f"base_model: {base}",
        "library_name: " + ("peft" if "adapter" in saved else "transformers"),
        "pipeline_tag: image-text-to-text",
        f"tags: [diffcap, video-captioning, trl, {kind}]",
        "---",
        f"# {out.name}: a diffcap captioner",
        "",
        f"Trained with diffcap {__version__}: {_KINDS.get(kind, kind)}.",
        "",
        "## Base model",
        f"`{base}`",
        "",
        *_data_section(settings, metrics, report),
        "## Settings",
        *(
            f"- {k}: {_fmt(settings[k])}"
            for k in _SHOWN
            if k in settings and not (k == "lora" and settings.get("method") != "lora")
        ),
        "",
        "## Results",
        "| measure | value |",
        "| --- | --- |",
        *(
            f"| {k} | {_fmt(v)} |"
            for k, v in sorted(metrics.items())
            if isinstance(v, (int, float)) or v is None
        ),
        "",
        "## Use",
        *_usage(saved, list(getattr(report, "prompts", None) or [])),
    ]
    path = out / "README.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _data_section(settings: dict[str, Any], metrics: dict[str, Any], report: Any) -> list[str]:
    prompts = list(getattr(report, "prompts", None) or [])
    return [
        "## Data",
        f"Sources: {', '.join(f'`{d}`' for d in settings.get('data', []))}",
        "",
        report.line() if hasattr(report, "line") else str(report),
        "",
        *([f"Prompts (caption with the same): `{'`, `'.join(prompts)}`", ""] if prompts else []),
        "| task | examples |",
        "| --- | --- |",
        *(f"| {t} | {n} |" for t, n in sorted(dict(metrics.get("tasks") or {}).items())),
        "",
    ]


def _usage(saved: dict[str, str], prompts: list[str]) -> list[str]:
    folder = saved.get("merged") or saved.get("model") or saved.get("adapter") or "."
    flags = f" {prompts[0]}" if len(prompts) == 1 else ""
    lines = [
        "```",
        f"diffcap caption VIDEO --out captions.jsonl --backend transformers --model {folder}"
        + flags,
    ]
    if "merged" in saved or "model" in saved:
        lines.append(f"transformers serve {folder}   # or vLLM: an ordinary model folder")
    lines.append("```")
    return lines
