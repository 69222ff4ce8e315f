"""The import rules of issue 20 hold on the source tree, and each rule of the checker fires."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHECKER = REPO / "scripts" / "check_imports.py"


def run_checker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECKER), *args], capture_output=True, text=True, timeout=120
    )


def test_source_tree_passes_the_import_checker() -> None:
    result = run_checker()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_source_tree_keeps_the_layers_contract() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint_imports is None:
        pytest.skip("import-linter is not installed (the dev extra)")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run(
        [lint_imports, "--no-cache"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


PLANTED = {
    "__init__.py": "",
    # cycle: a imports b at module level, b imports a inside a function.
    "a.py": "from bad import b\n",
    "b.py": "def f():\n    from bad import a\n    return a\n",
    # private: a private name taken from another module, by import and by attribute.
    "helpers.py": "def _hidden():\n    return 1\n\n\ndef shown():\n    return _hidden()\n",
    "takes.py": (
        "from bad import helpers\nfrom bad.helpers import _hidden\n\n\n"
        "def g():\n    return helpers._hidden() + _hidden()\n"
    ),
    # local: a function imports a module that loads no extra; the others are allowed.
    "heavy.py": "import torch\n",
    "light.py": "import json\n",
    "uses.py": textwrap.dedent(
        """\
        from typing import TYPE_CHECKING

        if TYPE_CHECKING:
            from bad import light as typed_only


        def needs_nothing():
            from bad import light
            return light


        def needs_torch():
            from bad import heavy
            return heavy


        def said_why():
            from bad import light  # lazy: start-up of the bad CLI, measured
            return light


        def bare_reason():
            from bad import light  # lazy:
            return light
        """
    ),
}


def plant(tmp_path: Path, files: dict[str, str]) -> Path:
    package = tmp_path / "bad"
    package.mkdir()
    for name, text in files.items():
        (package / name).write_text(text)
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "bad"\ndependencies = ["numpy"]\n'
        '[project.optional-dependencies]\nlocal = ["torch>=2.2", "sentence-transformers"]\n'
    )
    return package


def test_each_rule_fires_on_a_planted_package(tmp_path: Path) -> None:
    package = plant(tmp_path, PLANTED)
    result = run_checker("--root", str(package), "--pyproject", str(tmp_path / "pyproject.toml"))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    found = {
        (Path(line.split(":")[0]).name, int(line.split(":")[1]), line.split(":")[2].strip())
        for line in lines
    }
    assert found == {
        ("a.py", 1, "cycle"),
        ("b.py", 2, "cycle"),
        ("b.py", 2, "local"),
        ("takes.py", 2, "private"),
        ("takes.py", 6, "private"),
        ("uses.py", 8, "local"),
        ("uses.py", 23, "local"),
    }, lines
    assert "circle: bad.a <-> bad.b" in result.stdout
    assert "imports _hidden from bad.helpers" in result.stdout
    assert "uses bad.helpers._hidden" in result.stdout


def test_a_clean_planted_package_passes(tmp_path: Path) -> None:
    files = {
        "__init__.py": "",
        "light.py": "import json\n\n\ndef shown():\n    return json\n",
        "uses.py": "from bad import light\n\n\ndef f():\n    return light.shown()\n",
        "via.py": "from bad import heavy\n",
        "heavy.py": "import sentence_transformers\n",
        "late.py": "def f():\n    from bad import via\n    return via\n",
    }
    package = plant(tmp_path, files)
    result = run_checker("--root", str(package), "--pyproject", str(tmp_path / "pyproject.toml"))
    assert (result.returncode, result.stdout) == (0, "")


def test_frames_are_converted_only_through_diffcaps_own_contexts() -> None:
    """PyAV's own conversions (``VideoFrame.reformat``, ``to_ndarray(format=...)``,
    ``to_rgb``, ``to_image``) keep a multi-threaded swscale context in a thread-local since
    PyAV 18.1.1, which hangs a forked child; ``diffcap.video.lazyframe.convert`` is the one
    way (tests/video/test_video_fork_safety.py shows the hang)."""
    import re

    banned = re.compile(r"\.(reformat|to_rgb|to_image)\(|\.to_ndarray\([^)]*format")
    allowed = "_reformatter(purpose).reformat("  # convert() itself, on its own contexts
    found = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in sorted((REPO / "src" / "diffcap").rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if banned.search(line.split("#")[0])
        and allowed not in line
        and not line.strip().startswith(('"', "``", "*"))
    ]
    assert found == []
