"""Run the real ``diffcap`` entry point in-process and return its exit status."""

from __future__ import annotations

from diffcap.cli.main import main


def run_cli(args: list[str]) -> int:
    """``main(args)``'s exit status (main() may or may not call sys.exit)."""
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def diffcap(*args: str) -> int:
    """``diffcap -q ARGS...``: the exit status, without progress bars."""
    return run_cli(["-q", *args])
