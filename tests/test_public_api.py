"""The top-level API resolves every advertised name and stays light to import."""

from __future__ import annotations

import subprocess
import sys

import pytest

import diffcap


@pytest.mark.parametrize("name", [n for n in diffcap.__all__ if n != "__version__"])
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(diffcap, name) is not None


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        diffcap.no_such_thing  # noqa: B018


def test_core_import_does_not_load_heavy_dependencies() -> None:
    code = (
        "import sys, diffcap, diffcap.cli.main, diffcap.pipeline, diffcap.captioning, "
        "diffcap.export, diffcap.web;"
        "print(','.join(m for m in ('torch','transformers','ray','usearch','matplotlib',"
        "'sentence_transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
