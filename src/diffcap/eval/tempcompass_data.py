"""TempCompass's files in every published layout, and its judge prompts from the user's copy.

Layouts of ``--data`` (the format of each question is its file's or folder's name):

- the GitHub repository root (``llyx97/TempCompass``), or its ``questions/`` folder:
  ``multi-choice.json``, ``yes_no.json``, ``caption_matching.json``, ``captioning.json``,
  each ``{video_id: {dimension: [{"question", "answer"}]}}``; or one of those files;
- the Hugging Face dataset (``lmms-lab/TempCompass``): one folder per format with
  ``test-*.parquet`` (or the hub's converted ``<format>/test/0000.parquet``), rows
  ``video_id, dim, question, answer`` (``captioning`` adds ``mc_question, mc_answer``), or
  one such Parquet file.

The judge prompts are not shipped with diffcap: TempCompass is CC BY-NC 4.0 and diffcap is
Apache-2.0, so they are read from the release's ``prompt_templates.py`` in the user's copy
(found in the repository root given as ``--data`` or above ``questions/``, or named with
``--prompts``), parsed as Python source, never executed.

    items = load_items(Path("TempCompass"))               # every format present
    prompts = judge_prompts(find_prompt_file(Path("TempCompass/questions")))
"""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path
from typing import Any

from diffcap.eval.base import (
    BenchmarkFileError,
    EvalItem,
    need_path,
    read_json,
    require_field,
)

__all__ = [
    "FORMATS",
    "PROMPT_FILE",
    "find_meta_info",
    "find_prompt_file",
    "judge_prompts",
    "load_items",
    "with_aspects",
]

FORMATS = ("multi-choice", "yes_no", "caption_matching", "captioning")
PROMPT_FILE = "prompt_templates.py"
#: The release's names of the judge prompts, per format.
PROMPT_NAMES = {
    "multi-choice": "multi_choice_evaluation_prompt",
    "yes_no": "yes_no_evaluation_prompt",
    "caption_matching": "caption_matching_evaluation_prompt",
    "captioning": "caption_evaluation_prompt",
}


def load_items(path: Path) -> list[EvalItem]:
    """The questions of every format found at ``path`` (any published layout)."""
    need_path(path, "TempCompass folder or file")
    if path.is_file():
        return _file_items(path, path.parent)
    if (path / "questions").is_dir():
        path = path / "questions"
    files = [path / f"{f}.json" for f in FORMATS if (path / f"{f}.json").is_file()]
    if files:
        return [it for f in files for it in _file_items(f, path)]
    parquet = [p for f in FORMATS for p in sorted(path.glob(f"{f}/**/*.parquet"))]
    parquet += [p for p in sorted(path.glob("*.parquet")) if _format_of(p)]
    if not parquet:
        listed = ", ".join(f"{f}.json" for f in FORMATS)
        raise BenchmarkFileError(
            f"{path}: no TempCompass questions ({listed}, or <format>/*.parquet)",
            hint="pass the repository root, its questions/ folder, or the Hugging Face "
            "dataset folder",
        )
    return [it for p in parquet for it in _parquet_items(p)]


def _format_of(path: Path) -> str | None:
    for name in (path.parent.name, path.parent.parent.name, path.stem):
        if name in FORMATS:
            return name
    return None


def _file_items(path: Path, folder: Path) -> list[EvalItem]:
    if path.suffix == ".parquet":
        return _parquet_items(path)
    fmt = path.stem
    if fmt not in FORMATS:
        raise BenchmarkFileError(
            f"{path}: unknown TempCompass file {fmt!r}; one of {', '.join(FORMATS)}"
        )
    mc: dict[str, Any] = {}
    if fmt == "captioning":  # judged against the video's first multi-choice question
        mc_file = folder / "multi-choice.json"
        if not mc_file.is_file():
            raise BenchmarkFileError(
                f"{path}: captioning needs multi-choice.json beside it (its judge asks the "
                "video's multi-choice question)"
            )
        mc = _grouped(mc_file)
    out = []
    for vid, dims in _grouped(path).items():
        for dim, questions in dims.items():
            for i, q in enumerate(questions):
                where = f"{path}: {vid!r}/{dim}[{i}]"
                data: dict[str, Any] = {}
                if fmt == "captioning":
                    first = _first_mc(mc, vid, dim, where)
                    data = {"mc_question": first["question"], "mc_answer": first["answer"]}
                out.append(_item(fmt, vid, dim, i, q, where, data))
    return out


def _grouped(path: Path) -> dict[str, Any]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise BenchmarkFileError(f"{path}: expected {{video_id: {{dimension: [...]}}}}")
    for vid, dims in data.items():
        if not isinstance(dims, dict):
            raise BenchmarkFileError(f"{path}: video {vid!r}: expected {{dimension: [...]}}")
        for dim, questions in dims.items():
            if not isinstance(questions, list):
                raise BenchmarkFileError(f"{path}: {vid!r}/{dim}: expected a list")
    return data


def _first_mc(mc: dict[str, Any], vid: str, dim: str, where: str) -> dict[str, str]:
    questions = (mc.get(vid) or {}).get(dim) or []
    if not questions:
        raise BenchmarkFileError(f"{where}: multi-choice.json has no question for it")
    q = questions[0]
    return {
        "question": require_field(q, "question", f"{where} (multi-choice)"),
        "answer": require_field(q, "answer", f"{where} (multi-choice)"),
    }


def _item(
    fmt: str, vid: str, dim: str, i: int, q: Any, where: str, data: dict[str, Any]
) -> EvalItem:
    return EvalItem(
        item_id=f"{fmt}/{vid}/{dim}/{i}",
        video=str(vid),
        question=require_field(q, "question", where),
        answer=require_field(q, "answer", where),
        dims={"task": fmt, "dimension": dim},
        data=data,
        where=where,
    )


def _parquet_items(path: Path) -> list[EvalItem]:
    import pyarrow.parquet as pq

    fmt = _format_of(path)
    if fmt is None:
        raise BenchmarkFileError(
            f"{path}: cannot tell the format (a folder named one of {', '.join(FORMATS)})"
        )
    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise BenchmarkFileError(f"{path}: not a readable Parquet file ({exc})") from None
    out: list[EvalItem] = []
    seen: dict[tuple[str, str], int] = {}
    for n, row in enumerate(rows, 1):
        where = f"{path}: row {n}"
        vid = str(require_field(row, "video_id", where, (str, int)))
        dim = require_field(row, "dim", where)
        i = seen[(vid, dim)] = seen.get((vid, dim), -1) + 1
        data: dict[str, Any] = {}
        if fmt == "captioning":
            data = {
                "mc_question": require_field(row, "mc_question", where),
                "mc_answer": require_field(row, "mc_answer", where),
            }
        out.append(_item(fmt, vid, dim, i, row, where, data))
    return out


def find_prompt_file(data: Path, given: str | None = None) -> Path | None:
    """The release's ``prompt_templates.py``: ``given`` (a file or the folder holding it),
    else in ``data``'s folder or the two above it."""
    if given:
        p = Path(given)
        p = p / PROMPT_FILE if p.is_dir() else p
        if not p.is_file():
            raise BenchmarkFileError(f"--prompts {given}: no such file")
        return p
    return _near(data, PROMPT_FILE)


def judge_prompts(path: Path) -> dict[str, str]:
    """Format -> the release's judge prompt, read from its source without running it."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, ValueError) as exc:
        raise BenchmarkFileError(f"{path}: cannot read the prompts ({exc})") from None
    found: dict[str, str] = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            found[node.targets[0].id] = node.value.value
    missing = [name for name in PROMPT_NAMES.values() if name not in found]
    if missing:
        raise BenchmarkFileError(f"{path}: no {', '.join(missing)} (TempCompass's prompts)")
    return {fmt: found[name] for fmt, name in PROMPT_NAMES.items()}


def _near(data: Path, name: str) -> Path | None:
    folder = data if data.is_dir() else data.parent
    for candidate in (folder, folder.parent, folder.parent.parent):
        if (candidate / name).is_file():
            return candidate / name
    return None


def find_meta_info(data: Path) -> Path | None:
    """The release's ``meta_info.json`` (each video's fine-grained aspects), if beside."""
    return _near(data, "meta_info.json")


def with_aspects(items: list[EvalItem], meta_file: Path | None) -> list[EvalItem]:
    """Items with dimension ``aspect``: the release's fine-grained aspect of the question
    (``eval_dim.<dimension>.type`` of its video, ``order`` for order), as
    ``utils/eval_utils.py`` tables them."""
    if meta_file is None:
        return items
    meta = read_json(meta_file)
    if not isinstance(meta, dict):
        raise BenchmarkFileError(f"{meta_file}: expected {{video_id: {{eval_dim: ...}}}}")
    out = []
    for it in items:
        dim = it.dims["dimension"]
        video = meta.get(it.video.replace(".jpg", "").replace(".mp4", ""))
        entry = (video.get("eval_dim") or {}).get(dim) if isinstance(video, dict) else None
        aspect = "order" if dim == "order" else (entry or {}).get("type")
        out.append(replace(it, dims={**it.dims, "aspect": str(aspect)}) if aspect else it)
    return out
