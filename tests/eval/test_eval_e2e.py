"""The whole path: ``diffcap run`` captions generated videos with a loopback model, then
``diffcap eval dream1k`` scores those captions with a loopback judge; and the same eval
captioning the videos itself (``--videos``, a diffcap run inside the eval)."""

from __future__ import annotations

import pytest

from diffcap.video.synth import Scene, write_video
from support.cli import diffcap
from support.evals import model_flags, read_out, write_jsonl
from support.fault_server import routed_reply

EVENTS_1 = ["A man opens a door.", "A man sits down."]
EVENTS_2 = ["A dog jumps.", "A dog runs.", "A dog barks."]


def rels(*names: str) -> str:
    return '{"events": [' + ", ".join(f'{{"relationship": "{n}"}}' for n in names) + "]}"


def reply():
    return routed_reply([
        # the judge: events of each caption, then entailment both ways
        ("Video Description: a man opens a door.", "{'events': ['a man opens a door']}"),
        ("Video Description: a dog jumps and runs.",
         "{'events': ['a dog jumps', 'a dog runs']}"),
        (f"Events: {EVENTS_1}", rels("entailment", "neutral")),                # R1 = 1/2
        ("Events: ['a man opens a door']", rels("entailment")),                # P1 = 1
        (f"Events: {EVENTS_2}", rels("entailment", "entailment", "neutral")),  # R2 = 2/3
        ("Events: ['a dog jumps', 'a dog runs']", rels("entailment", "contradiction")),  # P2 = 1/2
        # the captioner: the summary of each video (told apart by its duration)
        ("one video that lasts 1.0 s", "A man opens a door."),
        ("one video that lasts 2.0 s", "A dog jumps and runs."),
    ], default="A frame.")  # fmt: skip


@pytest.fixture
def dream(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "1.mp4", [Scene(1.0, hue=0.1)], size=(48, 48), fps=8)
    write_video(videos / "2.mp4", [Scene(1.0, hue=0.4), Scene(1.0, hue=0.8)], size=(48, 48), fps=8)
    rows = [
        {"idx": i, "dataset": "DREAM/live_action", "video_file": "<placeholder>",
         "text": {"prompt": "<video>\nDescribe the video in detail.", "response": ref},
         "extra_info": {"events": ev, "n_subjects": 1, "n_shots": 1, "n_events": len(ev)}}
        for i, ref, ev in ((1, "A man opens a door and sits down.", EVENTS_1),
                           (2, "A dog jumps, runs and barks.", EVENTS_2))
    ]  # fmt: skip
    return videos, write_jsonl(tmp_path / "DREAM-1k.jsonl", rows)


def check(scores):
    # R = (1/2 + 2/3) / 2 = 7/12, P = (1 + 1/2) / 2 = 3/4, F1 = 2RP / (R + P) = 504/768.
    o = scores["overall"]
    assert o["count"] == 2 and scores["counts"]["missing"] == 0
    assert o["recall"] == pytest.approx(7 / 12)
    assert o["precision"] == pytest.approx(3 / 4)
    assert o["f1"] == pytest.approx(504 / 768)
    assert scores["judge"] == "judge-x"


def judge(srv) -> list[str]:
    return ["--judge-model", "judge-x", "--judge-api-base", srv.base_url, "--judge-api-key", "t"]


def test_run_then_eval_dream1k(fault_server, dream, tmp_path):
    videos, data = dream
    fault_server.reply = reply()
    run_dir = tmp_path / "run"
    assert diffcap("run", str(videos), "--out", str(run_dir), "--embedder", "weightless",
                   "--workers", "1", *model_flags(fault_server)) == 0  # fmt: skip
    out = tmp_path / "eval"
    assert diffcap("eval", "dream1k", "--data", str(data), "--captions", str(run_dir),
                   *judge(fault_server), "--no-progress", "--out", str(out)) == 0  # fmt: skip
    scores, preds = read_out(out)
    check(scores)
    assert scores["caption_provenance"]["model"] == "tiny"  # which captioner wrote them
    assert {p["id"]: p["raw"] for p in preds} == {
        "1": "A man opens a door.", "2": "A dog jumps and runs."}  # fmt: skip


def test_eval_captions_the_videos_itself(fault_server, dream, tmp_path):
    videos, data = dream
    fault_server.reply = reply()
    out = tmp_path / "eval"
    assert diffcap("eval", "dream1k", "--data", str(data), "--videos", str(videos),
                   "--embedder", "weightless", "--workers", "1", *judge(fault_server),
                   *model_flags(fault_server), "--out", str(out)) == 0  # fmt: skip
    check(read_out(out)[0])
    assert (out / "captions.run" / "run.sqlite").is_file()
    judged = [r for r in fault_server.requests if r.body["model"] == "judge-x"]
    assert len(judged) == 6
