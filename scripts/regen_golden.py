"""Regenerate the reference outputs of the golden test (tests/golden/) from this checkout.

    PYTHONPATH=src python scripts/regen_golden.py           # rewrite tests/golden/
    PYTHONPATH=src python scripts/regen_golden.py --check   # exit 1 when they differ

Only regenerate when a change of output is intended, and say what changed in CHANGELOG.md:
tests/test_golden.py exists to prove that a refactoring changes no record, export or exit
code. Its docstring lists what is run, compared and normalized.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; write nothing")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # as tests/conftest.py does
    sys.path.insert(0, str(TESTS))
    import test_golden as golden

    with tempfile.TemporaryDirectory(prefix="diffcap-golden-") as tmp:
        entries = golden.produce(Path(tmp) / "golden-run")
    if args.check:
        expected = golden.read_golden()
        if entries != expected:
            print(golden.describe_mismatch(expected, entries))
            return 1
        print(f"{golden.GOLDEN}: {len(entries)} entries match")
        return 0
    golden.write_golden(entries)
    size = sum(len(t.encode()) for t in entries.values())
    print(f"wrote {len(entries)} entries ({size / 1024:.0f} KiB) to {golden.GOLDEN}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
