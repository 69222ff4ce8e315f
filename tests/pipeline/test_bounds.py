"""Bounds on every user number that sizes memory, and on every answer: a tiny interval is
refused with a clear error, candidate times are planned lazily with a per-video cap, and a
huge answer is cut before it is cached, written or fed to the next prompt."""

from __future__ import annotations

import json
import re
import sqlite3
import tracemalloc

import pytest
from pydantic import ValidationError

from diffcap.config import MIN_INTERVAL, KeyframeConfig, RunConfig
from diffcap.errors import ConfigError
from diffcap.keyframes import extract_keyframes
from diffcap.keyframes.plan import MAX_CANDIDATES, iter_targets
from diffcap.models.base import ANSWER_CAPPED, MAX_ANSWER_CHARS
from diffcap.video.synth import Scene, write_video
from support import servers
from support.cli import diffcap

_fault_server_session = servers._fault_server_session
fault_server = servers.fault_server


@pytest.mark.parametrize("interval", [1e-9, 0.0, -1.0, MIN_INTERVAL / 2])
def test_an_interval_below_the_documented_minimum_is_refused(interval):
    with pytest.raises(ValidationError, match="interval"):
        RunConfig.model_validate({"keyframes": {"interval": interval}})
    assert RunConfig.model_validate({"keyframes": {"interval": MIN_INTERVAL}})


def test_the_cli_refuses_a_tiny_interval_with_exit_2(tmp_path, capsys):
    code = diffcap(
        "keyframes", str(tmp_path / "a.mp4"), "--out", str(tmp_path / "k"),
        "--set", "keyframes.interval=1e-9",
    )  # fmt: skip
    assert code == 2
    assert "keyframes.interval" in capsys.readouterr().err


def test_targets_are_planned_lazily_in_bounded_memory():
    tracemalloc.start()
    try:
        targets = iter_targets(0.0, 4_000.0, MIN_INTERVAL, 4_000.0, probes=True, cuts=[1.5])
        n, last = 0, -1.0
        for t, _ in targets:
            assert t >= last
            last, n = t, n + 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 4_000_000 + 7 + 1 + 1  # candidates, probes, the cut, the final target
    assert peak < 2_000_000  # a list of 4 M floats alone would be ~100 MB


def test_a_window_with_too_many_candidates_fails_with_a_clear_error():
    seconds = MAX_CANDIDATES * MIN_INTERVAL * 2
    with pytest.raises(ConfigError, match="candidate frames") as err:
        next(iter_targets(0.0, seconds, MIN_INTERVAL, seconds, probes=False))
    assert "keyframes.interval" in (err.value.hint or "")


def test_extraction_at_the_minimum_interval_works(tmp_path):
    path = tmp_path / "v.mp4"
    write_video(path, [Scene(1.0, hue=0.1), Scene(1.0, hue=0.6)], size=(64, 64), fps=10)
    kset = extract_keyframes(path, KeyframeConfig(interval=MIN_INTERVAL))
    assert len(kset.keyframes) >= 2


HUGE = "word " * (4 * MAX_ANSWER_CHARS // 5)  # 4x the cap


def test_a_huge_answer_is_capped_before_it_is_stored_or_sent_again(fault_server, tmp_path):
    path = tmp_path / "v.mp4"
    write_video(path, [Scene(2.0, hue=0.1), Scene(2.0, hue=0.6)], size=(64, 64), fps=10)
    fault_server.reply = lambda body: HUGE
    out = tmp_path / "run"
    code = diffcap(
        "run", str(path), "--out", str(out), "--backend", "openai",
        "--api-base", fault_server.base_url, "--model", "tiny", "--api-key", "test",
        "--workers", "1", "--no-progress", "--interval", "1",
        # a context that holds three capped answers: the summary then fits, and is checked
        "--set", "model.context_tokens=200000",
    )  # fmt: skip
    assert code == 0
    assert len(fault_server.requests) >= 2
    for received in fault_server.requests:  # answers come back in prompts only capped
        runs = re.findall(r"(?:word )+", json.dumps(received.body))
        assert max(map(len, runs), default=0) <= MAX_ANSWER_CHARS
    assert any(re.search(r"(?:word ){1000}", r.prompt) for r in fault_server.requests)
    with sqlite3.connect(out / "run.sqlite") as conn:
        rows = conn.execute("SELECT length(text), finish_reason FROM requests").fetchall()
    assert rows and all(n <= MAX_ANSWER_CHARS and f == ANSWER_CAPPED for n, f in rows)
    record = (out / "records" / "records-00000.jsonl").read_text()
    assert max(map(len, re.findall(r"(?:word )+", record))) <= MAX_ANSWER_CHARS
