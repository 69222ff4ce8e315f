"""Shared test setup: offline hub, an isolated HOME, and no ERROR logs allowed."""

from __future__ import annotations

import logging
import os

import pytest

# Never reach a model hub from tests (a failed lookup can hang ~45 s here).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Every Ray a test starts (ray.init, ray.cluster_utils.Cluster) binds loopback only; ray reads
# this when it is imported, so it is set before any test module imports ray.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


@pytest.fixture(autouse=True)
def _no_error_logs(caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest):
    """Fail any test that logged an ERROR from diffcap, unless it opts out with
    ``@pytest.mark.allow_error_logs``."""
    caplog.set_level(logging.INFO, logger="diffcap")
    yield
    if request.node.get_closest_marker("allow_error_logs"):
        return
    errors = [
        r
        for r in caplog.get_records("call")
        if r.levelno >= logging.ERROR and r.name.startswith("diffcap")
    ]
    if errors:
        pytest.fail("diffcap logged errors: " + "; ".join(r.getMessage() for r in errors))
