"""Backend registry, configuration errors, missing key / server messages, pricing."""

from __future__ import annotations

import json
import logging
import textwrap

import pytest

from diffcap.config import ModelConfig
from diffcap.errors import ConfigError, ModelUnavailable
from diffcap.models import (
    Backend,
    ModelRequest,
    ModelResponse,
    PriceTable,
    available_backends,
    estimate_cost,
    get_backend,
    pricing,
    register_backend,
    registry,
)
from diffcap.models.openai_backend import OpenAIBackend


@pytest.fixture
def clean_registry(monkeypatch):
    """Run with a fresh registry (built-ins and entry points rediscovered)."""
    monkeypatch.setattr(registry, "_registry", {})
    monkeypatch.setattr(registry, "_pending", {})
    monkeypatch.setattr(registry, "_discovered", False)


@pytest.fixture
def no_openai_env(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


class EchoBackend(Backend):
    name = "echo-test"

    def __init__(self, cfg: ModelConfig, *, prefix: str = "") -> None:
        self.cfg = cfg
        self.model = cfg.model or "echo"
        self.prefix = prefix

    async def agenerate(self, request: ModelRequest) -> ModelResponse:
        return ModelResponse(text=self.prefix + request.prompt, model=self.model)


def test_builtins_are_listed_without_importing_heavy_deps(clean_registry):
    names = available_backends()
    assert {"openai", "transformers"} <= set(names)
    # Listing reads names only: no backend class was imported to do it.
    assert registry._registry == {}


def test_unknown_backend_lists_choices(clean_registry):
    with pytest.raises(ConfigError) as err:
        get_backend("nope")
    assert "openai" in str(err.value) and "transformers" in str(err.value)


def test_register_and_build_with_kwargs(clean_registry):
    register_backend(EchoBackend)
    assert "echo-test" in available_backends()
    backend = get_backend("echo-test", model="m1", concurrency=3, prefix=">> ")
    assert isinstance(backend, EchoBackend)
    assert backend.cfg.model == "m1" and backend.cfg.concurrency == 3
    assert backend.cfg.backend == "echo-test"
    assert backend.generate(ModelRequest(model="m1", prompt="hi")).text == ">> hi"
    with pytest.raises(ConfigError, match="does not accept"):
        get_backend("echo-test", colour="red")
    with pytest.raises(ConfigError, match="invalid model settings"):
        get_backend("echo-test", concurrency=0)
    with pytest.raises(TypeError):
        register_backend(dict)  # type: ignore[arg-type]


def test_entry_point_plugin_is_discovered(clean_registry, tmp_path, monkeypatch):
    # A real installed distribution (a dist-info folder on sys.path) declaring the group.
    pkg = tmp_path / "diffcap_plugin_demo.py"
    pkg.write_text(
        textwrap.dedent("""
        from diffcap.models.base import Backend, ModelResponse
        class DemoBackend(Backend):
            name = "demo-plugin"
            def __init__(self, cfg):
                self.model = cfg.model or "demo"
            async def agenerate(self, request):
                return ModelResponse(text=request.prompt.upper(), model=self.model)
    """)
    )
    dist = tmp_path / "diffcap_plugin_demo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: diffcap-plugin-demo\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[diffcap.backends]\ndemo-plugin = diffcap_plugin_demo:DemoBackend\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "demo-plugin" in available_backends()
    backend = get_backend("demo-plugin")
    assert backend.generate(ModelRequest(model="demo", prompt="abc")).text == "ABC"


def test_broken_plugin_is_a_config_error(clean_registry, monkeypatch):
    monkeypatch.setitem(registry.BUILTINS, "broken", "no_such_module_xyz:Thing")
    with pytest.raises(ConfigError, match="failed to load"):
        get_backend("broken")


def test_openai_without_key_or_base_fails_fast(no_openai_env):
    with pytest.raises(ModelUnavailable) as err:
        get_backend("openai")
    msg = str(err.value)
    assert "OPENAI_API_KEY" in msg
    assert "--api-base http://127.0.0.1:8000/v1 --model NAME" in msg
    assert "--backend transformers --model /path/to/dir" in msg


def test_openai_base_from_env_and_key_never_shown(no_openai_env, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    backend = get_backend("openai")
    assert backend.api_base == "http://127.0.0.1:9/v1"
    assert backend.model == "gpt-4o-mini"  # the documented default
    secret = "sk-test-DO-NOT-LEAK-123"
    backend = get_backend("openai", api_key=secret, model="gpt-4o")
    cfg = backend.cfg
    assert secret not in repr(backend) and secret not in repr(cfg)
    assert secret not in json.dumps(cfg.model_dump())


def test_transformers_missing_folder_message():
    pytest.importorskip("torch")
    with pytest.raises(ModelUnavailable) as err:
        get_backend("transformers", model="/definitely/not/here")
    assert "--backend transformers --model /path/to/dir" in str(err.value)
    assert "--api-base http://127.0.0.1:8000/v1" in str(err.value)


# --- pricing ------------------------------------------------------------------------------


def test_shipped_prices_and_name_variants():
    table = PriceTable()
    assert table.lookup("gpt-4o-mini").input == pytest.approx(0.15)
    assert table.lookup("gpt-4o-mini-2024-07-18") == table.lookup("gpt-4o-mini")
    assert table.lookup("openai/gpt-4o") == table.lookup("gpt-4o")
    assert table.lookup("gpt-4o-2024-05-13").input == pytest.approx(5.0)  # own entry wins
    assert estimate_cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)


def test_unknown_model_costs_zero_with_one_warning(caplog, monkeypatch):
    monkeypatch.setattr(pricing, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="diffcap"):
        assert estimate_cost("my-local-vlm", 100, 100) == 0.0
        assert estimate_cost("my-local-vlm", 100, 100) == 0.0
    warnings = [r for r in caplog.records if "my-local-vlm" in r.getMessage()]
    assert len(warnings) == 1


def test_user_price_tables(tmp_path, monkeypatch):
    jpath = tmp_path / "p.json"
    jpath.write_text(json.dumps({"my-vlm": {"input": 1.0, "output": 2.0}}))
    monkeypatch.setenv("DIFFCAP_PRICES", str(jpath))
    assert estimate_cost("my-vlm", 1000, 1000) == pytest.approx(0.003)
    ypath = tmp_path / "p.yaml"
    ypath.write_text("gpt-4o-mini:\n  input: 10\n  output: 10\n")
    monkeypatch.setenv("DIFFCAP_PRICES", str(ypath))
    assert estimate_cost("gpt-4o-mini", 1000, 0) == pytest.approx(0.01)  # overrides shipped
    assert estimate_cost("x", 10**6, 0, prices={"x": {"input": 3, "output": 0}}) == 3.0
    ypath.write_text("bad: {input: cheap}\n")
    with pytest.raises(ConfigError, match="bad"):
        PriceTable(ypath)


def test_openai_backend_is_a_registered_builtin(clean_registry):
    from diffcap.models import backend_class

    assert backend_class("openai") is OpenAIBackend


def test_importing_models_and_prompts_never_imports_torch():
    import subprocess
    import sys

    code = (
        "import sys, diffcap.models, diffcap.prompts, diffcap.models.transformers_backend, "
        "diffcap.models.openai_backend; diffcap.models.available_backends(); "
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
