"""A killed eval resumes without re-sending finished calls: ``diffcap eval`` as a real
subprocess, SIGKILLed mid-run, then rerun; the loopback judge counts what it answered."""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import subprocess
import sys
import time

from support.evals import write_jsonl
from support.fault_server import FaultServer, prompt_text

N_ITEMS = 12
#: Time a client may need between the server writing an answer and committing it to the
#: request cache; a call answered earlier than this before the kill must never be re-sent.
GRACE = 0.25


def judge(body) -> str:
    text = prompt_text(body)
    if "Extract at most 10 key events" in text:
        n = int(re.search(r"caption number (\d+)", text).group(1))
        return json.dumps({"events": [f"event {i}" for i in range(1 + n % 3)]})
    events = ast.literal_eval(re.search(r"Events: (\[.*?\])\n", text).group(1))
    kinds = ["entailment", "neutral", "contradiction"]
    return json.dumps({"events": [{"event": e, "relationship": kinds[(len(e) + i) % 3]}
                                  for i, e in enumerate(events)]})  # fmt: skip


def fixture(tmp_path):
    rows, caps = [], []
    for i in range(1, N_ITEMS + 1):
        rows.append({"idx": i, "dataset": f"DREAM/s{i % 2}", "video_file": "<placeholder>",
                     "text": {"prompt": "Describe.", "response": f"Reference {i} walks."},
                     "extra_info": {"events": [f"ref {i} a", f"ref {i} b"], "n_subjects": 1,
                                    "n_shots": 1, "n_events": 2}})  # fmt: skip
        caps.append({"video_id": str(i), "video_path": f"/v/{i}.mp4", "duration": 1.0,
                     "keyframes": [], "mode": "fast",
                     "captions": [{"idx": "-1", "content": f"Caption number {i}."}]})  # fmt: skip
    return write_jsonl(tmp_path / "d.jsonl", rows), write_jsonl(tmp_path / "c.jsonl", caps)


def command(srv, data, caps, out):
    return [sys.executable, "-m", "diffcap", "-q", "eval", "dream1k", "--data", str(data),
            "--captions", str(caps), "--judge-model", "j", "--judge-api-base", srv.base_url,
            "--judge-api-key", "test", "--concurrency", "2", "--model-max-retries", "0",
            "--no-progress", "--out", str(out)]  # fmt: skip


def env():
    return {**os.environ, "HF_HUB_OFFLINE": "1"}


def test_sigkill_then_resume_pays_each_call_once(tmp_path):
    data, caps = fixture(tmp_path)
    with FaultServer(latency=0.12, reply=judge) as srv:
        out = tmp_path / "killed"
        proc = subprocess.Popen(command(srv, data, caps, out), env=env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        deadline = time.monotonic() + 60
        while sum(r.answered_at is not None for r in srv.requests) < 10:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at = time.monotonic()
        before = list(srv.requests)
        done = subprocess.run(command(srv, data, caps, out), env=env(), capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        after = srv.requests[len(before) :]
        paid = {
            json.dumps(r.body, sort_keys=True)
            for r in before
            if r.answered_at is not None and r.answered_at < killed_at - GRACE
        }
        resent = [r for r in after if json.dumps(r.body, sort_keys=True) in paid]
        assert paid and not resent
        # Every item is scored once; the numbers equal an uninterrupted eval's.
        fresh = tmp_path / "fresh"
        srv.latency = 0.0
        clean = subprocess.run(command(srv, data, caps, fresh), env=env(), capture_output=True,
                               text=True, timeout=120)  # fmt: skip
        assert clean.returncode == 0, clean.stderr
    resumed_scores = json.loads((out / "scores.json").read_text())
    fresh_scores = json.loads((fresh / "scores.json").read_text())
    assert resumed_scores["overall"] == fresh_scores["overall"]
    assert resumed_scores["overall"]["count"] == N_ITEMS
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert sorted(json.loads(x)["id"] for x in lines) == sorted(str(i) for i in range(1, 13))


def test_server_errors_defer_items_and_a_rerun_finishes(fault_server, tmp_path):
    """A 500 (no retries) is a fault of the world: the item stays pending (exit 4), nothing
    is marked failed, and the rerun sends only that item's calls."""
    from support.cli import diffcap

    data, caps = fixture(tmp_path)
    fault_server.reply = judge
    fault_server.fail("server_error", when="caption number 3.")
    out = tmp_path / "out"
    args = command(fault_server, data, caps, out)[4:]  # after "python -m diffcap -q"
    assert diffcap(*args, "--limit", "4") == 4
    scores = json.loads((out / "scores.json").read_text())
    assert scores["counts"] == {"items": 4, "scored": 3, "failed": 0, "pending": 1, "missing": 0}
    sent = len(fault_server.requests)
    assert diffcap(*args, "--limit", "4") == 0
    again = fault_server.requests[sent:]
    item3 = ("caption number 3.", "'ref 3 a'", "reference 3 walks.")
    assert len(again) == 3 and all(any(k in r.prompt for k in item3) for r in again)
    assert json.loads((out / "scores.json").read_text())["counts"]["scored"] == 4
