"""The stage registry: names resolve to their classes, each module loaded on first use."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from diffcap.config import RunConfig
from diffcap.engine.stage import Stage
from diffcap.errors import ConfigError
from diffcap.stages.registry import STAGES, build_stages, stage_names


def test_every_name_resolves_to_the_stage_of_that_name() -> None:
    assert list(STAGES) == ["prepare", "short_caption", "dedup", "keyframes", "caption"]
    assert len(STAGES) == 5
    for name in STAGES:
        cls = STAGES[name]
        assert issubclass(cls, Stage)
        assert cls.name == name
    with pytest.raises(KeyError):
        STAGES["nope"]
    assert "caption" in STAGES and "nope" not in STAGES
    # the lazy paths stay inside the stages layer (the import checkers cannot see them)
    assert all(p.startswith("diffcap.stages.") for p in STAGES._paths.values())  # type: ignore[attr-defined]


def test_only_model_stages_say_they_use_models(tmp_path) -> None:
    cfg = RunConfig.model_validate({"filter": {"dedup": True}})
    stages = build_stages(stage_names("run", cfg), cfg, tmp_path)
    assert [s.name for s in stages] == ["prepare", "short_caption", "dedup", "keyframes", "caption"]
    assert [s.uses_models for s in stages] == [False, True, False, False, True]
    with pytest.raises(ConfigError, match="unknown pipeline"):
        stage_names("nope", cfg)


def test_a_keyframes_stage_list_loads_no_captioning_module() -> None:
    unused = ("diffcap.captioning", "diffcap.stages.caption", "diffcap.models", "diffcap.prompts")
    code = (
        "import json, sys\n"
        "from diffcap.config import RunConfig\n"
        "from diffcap.stages.registry import STAGES, build_stages\n"
        "assert 'caption' in STAGES and 'short_caption' in STAGES\n"
        "build_stages(['prepare', 'keyframes'], RunConfig(), '.')\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({unused!r}))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []
