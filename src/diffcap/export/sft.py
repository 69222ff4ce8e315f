"""Fine-tuning data for the trainers users already run, from the same builder as ``llava``
(:func:`~diffcap.export.llava.write_items`): the same samples, prompts and images.

- ``llamafactory``: LLaMA-Factory's multimodal ShareGPT-style JSON list, ``{"messages":
  [{"role": "system"?...}, {"role": "user", "content": "<image>...prompt"}, {"role":
  "assistant", "content": caption}], "images": [paths]}``, plus a ``dataset_info.json`` beside
  it registering the file (``formatting: sharegpt``, the ``messages``/``images`` columns and
  role tags), so ``dataset: <stem>`` with ``dataset_dir: <folder>`` trains on it.
- ``swift``: ms-swift's standard JSONL, one ``{"messages": [...], "images": [...]}`` per line
  (``<image>`` tags in the user turn, one per image, in order).
- ``qwenvl``: the Qwen-VL fine-tune JSON, ``{"id", "conversations": [{"from": "user",
  "value": "Picture 1: <img>path</img>\\n...prompt"}, {"from": "assistant", "value": ...}]}``.

    diffcap export runs/teacher --format llamafactory --out lf/diffcap.json --tasks fast,slide
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from diffcap.export.base import ExportOptions, ExportResult
from diffcap.export.llava import IMAGE_TOKEN, write_items
from diffcap.export.records import RecordSource

__all__ = ["write_llamafactory", "write_qwenvl", "write_swift"]


def _parts(item: dict[str, Any]) -> tuple[list[str], str, str]:
    """(image paths, prompt without placeholders, answer) of a llava item."""
    image = item.get("image") or []
    images = [image] if isinstance(image, str) else list(image)
    human, answer = item["conversations"][0]["value"], item["conversations"][1]["value"]
    prompt = human.split("\n", len(images))[-1] if images else human
    return images, prompt, answer


def messages_row(item: dict[str, Any], system: str | None) -> dict[str, Any]:
    images, prompt, answer = _parts(item)
    messages = [{"role": "system", "content": system}] if system else []
    messages += [
        {"role": "user", "content": IMAGE_TOKEN * len(images) + prompt},
        {"role": "assistant", "content": answer},
    ]
    row: dict[str, Any] = {"id": item["id"], "task": item["task"], "messages": messages}
    if images:
        row["images"] = images
    return row


def qwenvl_row(item: dict[str, Any], system: str | None) -> dict[str, Any]:
    images, prompt, answer = _parts(item)
    pictures = "".join(f"Picture {n}: <img>{p}</img>\n" for n, p in enumerate(images, 1))
    return {
        "id": item["id"],
        "task": item["task"],
        "conversations": [
            {"from": "user", "value": pictures + prompt},
            {"from": "assistant", "value": answer},
        ],
    }


def write_llamafactory(source: RecordSource, out: Path, opts: ExportOptions) -> ExportResult:
    result = write_items(source, out, opts, "llamafactory", messages_row)
    info_path = out.parent / "dataset_info.json"
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {}
    info[out.stem] = {
        "file_name": out.name,
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
            "system_tag": "system",
        },
    }
    info_path.write_text(json.dumps(info, indent=2), encoding="utf-8")
    result.notes.append(f"registered as '{out.stem}' in {info_path}")
    return result


def write_swift(source: RecordSource, out: Path, opts: ExportOptions) -> ExportResult:
    return write_items(source, out, opts, "swift", messages_row, jsonl=True)


def write_qwenvl(source: RecordSource, out: Path, opts: ExportOptions) -> ExportResult:
    return write_items(source, out, opts, "qwenvl", qwenvl_row)
