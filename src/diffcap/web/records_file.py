"""Reading a records JSONL for the web pages: a clear error for a file that is not one, live
files (``caption --live``) as one record, unreadable lines skipped with a warning.

    check_records_file(Path("captions.jsonl"))        # ConfigError for a README
    for rec in read_records(Path("captions.jsonl")): ...
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from diffcap.errors import ConfigError
from diffcap.io.livefile import is_live_file, read_record

logger = logging.getLogger(__name__)


def check_records_file(path: Path) -> None:
    """One clear error, not a warning per line, when ``path`` is not a records JSONL (a
    README, a video, a config): its first non-blank line must be a JSON record, or it is a
    ``caption --live`` file (events, read as one record)."""
    if is_live_file(path):
        return
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            first = next((line for line in fh if line.strip()), "")
        d = json.loads(first) if first else None
    except (OSError, json.JSONDecodeError, RecursionError):
        d = None
    if not (isinstance(d, dict) and "video_id" in d):
        raise ConfigError(
            f"{path}: not a diffcap records file (its first line is not a JSON record)",
            hint="pass a `diffcap run` output directory or the .jsonl of `diffcap caption`",
        )


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """A records file's records; a live records file (``caption --live``) is one record."""
    if is_live_file(path):
        yield read_record(path)
        return
    yield from read_jsonl(path)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as exc:
                logger.warning("%s:%d: skipped a line that is not JSON (%s)", path, n, exc)
                continue
            if isinstance(d, dict):
                yield d
