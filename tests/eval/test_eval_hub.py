"""``--data hf:ORG/NAME/PATH``: benchmark files from a Hugging Face dataset repo (a loopback
fake of the hub), only PATH fetched, then used offline from the cache."""

from __future__ import annotations

import json

from support.evals import read_out, run_eval
from support.fake_hub import FakeHub, use_fake_hub
from support.fault_server import routed_reply


def test_mvbench_from_a_hub_dataset(fault_server, eval_videos, tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    (repo / "json").mkdir(parents=True)
    (repo / "video").mkdir()
    (repo / "json" / "fine_grained_action.json").write_text(json.dumps([
        {"video": "v1.mp4", "question": "What is he doing?", "candidates": ["run", "sit"],
         "answer": "sit"},
    ]))  # fmt: skip
    (repo / "video" / "big.bin").write_bytes(b"\0" * 4096)  # must not be fetched
    fault_server.reply = routed_reply([("What is he doing?", "B) sit")])
    with FakeHub({"OpenGVLab/MVBench": repo}) as hub:
        use_fake_hub(monkeypatch, hub.endpoint, tmp_path / "hf")
        out = tmp_path / "out"
        assert run_eval(fault_server, "mvbench", "--data", "hf:OpenGVLab/MVBench/json",
                        "--videos", str(eval_videos), "--out", str(out)) == 0  # fmt: skip
        fetched = [p for _, p in hub.requests if "/resolve/" in p]
    assert fetched and all("/datasets/OpenGVLab/MVBench/resolve/" in p for p in fetched)
    assert not any("big.bin" in p for p in fetched)
    scores, _ = read_out(out)
    assert scores["overall"]["accuracy"] == 1.0
    assert scores["data"].endswith("/json") and "snapshots" in scores["data"]
    # Cached: the same eval works with the hub gone and HF_HUB_OFFLINE set.
    use_fake_hub(monkeypatch, "http://127.0.0.1:9", tmp_path / "hf", offline=True)
    assert run_eval(fault_server, "mvbench", "--data", "hf:OpenGVLab/MVBench/json",
                    "--videos", str(eval_videos), "--out", str(out)) == 0  # fmt: skip
