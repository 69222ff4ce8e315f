"""Config resolution: preset < YAML < flags, unknown keys named, saved without api_key."""

from __future__ import annotations

import pytest
import yaml

from diffcap.config.resolve import (
    list_presets,
    parse_set,
    resolve_config,
    save_config,
)
from diffcap.errors import ConfigError


def test_presets_ship_and_validate():
    names = list_presets()
    assert {"paper", "fast-cheap"} <= set(names)
    for name in names:
        resolve_config(name)
    paper = resolve_config("paper")
    assert paper.keyframes.embedder == "clip" and paper.keyframes.threshold == 0.93
    assert paper.filter.dedup and paper.filter.max_duration == 120
    assert resolve_config("fast-cheap").caption.mode == "fast"


def test_precedence_flags_over_yaml_over_preset(tmp_path):
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text(
        yaml.safe_dump(
            {
                "keyframes": {"interval": 3.0, "max_side": 640},
                "model": {"concurrency": 3},
            }
        )
    )
    cfg = resolve_config("paper", cfg_file, {"keyframes.interval": 1.5, "model.model": "m"})
    assert cfg.keyframes.interval == 1.5  # flag beats YAML
    assert cfg.keyframes.max_side == 640  # YAML beats preset (1024)
    assert cfg.keyframes.threshold == 0.93  # preset beats default
    assert cfg.model.concurrency == 3 and cfg.model.model == "m"


def test_yaml_may_name_the_preset(tmp_path):
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text("preset: fast-cheap\nmodel:\n  max_tokens: 77\n")
    cfg = resolve_config(None, cfg_file)
    assert cfg.caption.mode == "fast" and cfg.model.max_tokens == 77
    assert resolve_config("paper", cfg_file).caption.mode == "slide"  # flag's preset wins


def test_unknown_keys_named(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'keyframes\.intervall'") as exc:
        resolve_config(overrides={"keyframes.intervall": 2})
    assert "did you mean 'interval'" in str(exc.value)
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text("captions:\n  mode: fast\n")
    with pytest.raises(ConfigError, match="unknown config key 'captions'"):
        resolve_config(None, cfg_file)
    with pytest.raises(ConfigError, match=r"'model\.concurrency'"):
        resolve_config(overrides={"model.concurrency": 0})
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        resolve_config("nope")


def test_parse_set():
    assert parse_set(
        [
            "filter.dedup=true",
            "keyframes.interval=1.5",
            "model.model=gpt-x",
            "caption.templates={summary: s.txt}",
        ]
    ) == {
        "filter.dedup": True,
        "keyframes.interval": 1.5,
        "model.model": "gpt-x",
        "caption.templates": {"summary": "s.txt"},
    }
    with pytest.raises(ConfigError, match=r"section\.key=value"):
        parse_set(["dedup"])


def test_saved_config_has_no_api_key(tmp_path):
    cfg = resolve_config(overrides={"model.api_key": "sk-secret", "model.api_base": "http://x"})
    assert cfg.model.api_key == "sk-secret"
    save_config(cfg, tmp_path / "config.yaml")
    text = (tmp_path / "config.yaml").read_text()
    assert "sk-secret" not in text and "api_key" not in text
    again = resolve_config(None, tmp_path / "config.yaml")  # the saved file loads back
    assert again.model.api_base == "http://x" and again.model.api_key is None
    assert again == cfg.model_copy(update={"model": cfg.model.model_copy(update={"api_key": None})})
