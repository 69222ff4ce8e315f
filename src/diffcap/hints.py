"""Commands named in hints, spelled so that they run on this machine.

After ``make demo``, ``diffcap`` and ``hf`` live in ``.venv/bin``, which is not on PATH: a hint
that says ``diffcap models`` would answer "command not found". :func:`command` gives the bare
name when PATH finds the same program this Python would run, else its path (relative to the
working directory when it is inside it).

    f"run `{command('diffcap')} models`"     # "diffcap models" or ".venv/bin/diffcap models"
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

__all__ = ["command", "printable"]


def command(name: str) -> str:
    """How to type ``name`` (a console script of this environment) here."""
    beside = Path(sys.executable).parent / name  # the environment's bin/ (a venv's)
    found = shutil.which(name)
    if found and (not beside.is_file() or _same(found, beside)):
        return name
    if beside.is_file():
        return _short(beside)
    if name == "diffcap":
        return f"{_short(Path(sys.executable))} -m diffcap"
    return name


def _same(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _short(path: Path) -> str:
    """``path`` relative to the working directory when inside it, else absolute."""
    absolute = path if path.is_absolute() else Path.cwd() / path
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: object) -> str:
    """``text`` on one line: control characters (a newline in a file name) are shown
    escaped (``\\n``, ``\\x1b``), so a name cannot forge lines or terminal codes."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(text))
