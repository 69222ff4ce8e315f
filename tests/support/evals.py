"""Helpers of the eval tests: run ``diffcap eval`` in-process against a loopback server and
read what it wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from support.cli import diffcap


def model_flags(srv: Any) -> list[str]:
    """The model under test is the loopback server (no retries: a failure shows at once)."""
    return [
        "--backend", "openai", "--api-base", srv.base_url, "--model", "tiny", "--api-key",
        "test", "--model-max-retries", "0", "--no-progress",
    ]  # fmt: skip


def run_eval(srv: Any, bench: str, *args: str) -> int:
    """``diffcap -q eval BENCH ARGS... <model flags>``'s exit status."""
    return diffcap("eval", bench, *args, *model_flags(srv))


def read_out(out: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(scores.json, predictions.jsonl lines) of an eval directory."""
    scores = json.loads((out / "scores.json").read_text())
    preds = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    return scores, preds


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
