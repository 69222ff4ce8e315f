"""No silent waits (issue 22, item 9): a server that only answers 429 trips the breaker,
a long wait the server asks for is announced, and a hung request warns early."""

from __future__ import annotations

import logging
import time

import pytest

from diffcap.errors import ModelUnavailable
from diffcap.models import ModelRequest, get_backend
from diffcap.models import retry as retry_module
from diffcap.models.retry import RetryPolicy


def req(prompt: str = "Describe.") -> ModelRequest:
    return ModelRequest(model="fault-model", prompt=prompt)


def test_a_server_that_only_answers_429_trips_the_breaker(fault_server):
    """Rate limited with no end: after ``give_up_after_s`` of nothing but 429s the run stops
    (ModelUnavailable: nothing marked failed, a rerun resumes) instead of waiting out
    every retry of every request."""
    fault_server.fail("rate_limit", retry_after=0.2, at=list(range(200)))
    backend = get_backend(
        "openai",
        api_base=fault_server.base_url,
        model="fault-model",
        give_up_after_s=0.5,
        max_retries=50,
        timeout_s=5.0,
    )
    start = time.monotonic()
    with pytest.raises(ModelUnavailable, match="kept failing"):
        backend.generate(req())
    assert time.monotonic() - start < 5  # 50 retries of 0.2 s would take 10 s
    assert 3 <= len(fault_server.requests) < 50


def test_a_long_wait_the_server_asks_for_is_announced(fault_server, caplog, monkeypatch):
    monkeypatch.setattr(retry_module, "LONG_WAIT_S", 0.3)  # "long" for a fast test
    fault_server.fail("rate_limit", retry_after=0.5)
    backend = get_backend(
        "openai",
        api_base=fault_server.base_url,
        model="fault-model",
        retry=RetryPolicy(max_retries=2, base_s=0.01),
        timeout_s=5.0,
        give_up_after_s=30.0,
    )
    with caplog.at_level(logging.INFO, logger="diffcap"):
        backend.generate(req())
    waits = [r for r in caplog.records if "as the server asked" in r.getMessage()]
    assert waits and waits[0].levelno == logging.WARNING
    assert "HTTP 429" in waits[0].getMessage() and "in 0.5 s" in waits[0].getMessage()


def test_a_hung_request_warns_long_before_its_timeout(fault_server, caplog):
    fault_server.fail("stall", stall_s=1.2)
    backend = get_backend(
        "openai",
        api_base=fault_server.base_url,
        model="fault-model",
        timeout_s=10.0,
        warn_after_s=0.3,
    )
    with caplog.at_level(logging.WARNING, logger="diffcap"):
        assert backend.generate(req()).text.startswith("ok")
    slow = [r.getMessage() for r in caplog.records if "no answer" in r.getMessage()]
    assert len(slow) == 1 and "after 0.3 s; still waiting" in slow[0], slow


def test_a_prompt_answer_does_not_warn(fault_server, caplog):
    backend = get_backend(
        "openai", api_base=fault_server.base_url, model="fault-model", warn_after_s=0.3
    )
    with caplog.at_level(logging.WARNING, logger="diffcap"):
        backend.generate(req())
        time.sleep(0.5)  # past warn_after_s: the timer was cancelled with the answer
    assert "no answer" not in caplog.text
