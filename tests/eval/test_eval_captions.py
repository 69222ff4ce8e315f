"""DREAM-1K (AutoDQ) and VDC (VDCscore) on captions from a records file, judged by a
loopback judge with scripted answers; every expected number is worked out by hand below."""

from __future__ import annotations

import pytest

from diffcap.eval.vdc import caption_prompt, caption_prompts
from support.evals import read_out, run_eval, write_jsonl
from support.fault_server import routed_reply


def record(video_id: str, caption: str, path: str = "") -> dict:
    return {"video_id": video_id, "video_path": path or f"/videos/{video_id}.mp4",
            "duration": 1.0, "keyframes": [], "mode": "slide",
            "captions": [{"idx": "0", "content": "frame text", "time": 0.0},
                         {"idx": "-1", "content": caption, "start": 0.0, "end": 1.0}]}  # fmt: skip


def dream_row(idx, dataset, reference, events, subjects, shots, n_events) -> dict:
    extra = {"duration": 3.0, "n_subjects": subjects, "n_shots": shots, "n_events": n_events}
    if events is not None:
        extra["events"] = events
    return {"idx": idx, "dataset": dataset, "video_file": "<placeholder>", "vid": idx,
            "text": {"prompt": "<video>\nDescribe the video in detail.", "response": reference},
            "extra_info": extra}  # fmt: skip


def judge_flags(srv) -> list[str]:
    return ["--judge-model", "judge-x", "--judge-api-base", srv.base_url,
            "--judge-api-key", "test"]  # fmt: skip


def rels(*names: str) -> str:
    return (
        '{"events": ['
        + ", ".join(
            f'{{"event": "e{i}", "relationship": "{n}", "reason": "r"}}'
            for i, n in enumerate(names)
        )
        + "]}"
    )


EVENTS_1 = ["A man opens a door.", "The man walks in."]
EVENTS_2 = ["A dog jumps.", "The dog barks.", "The dog runs away."]
PRED_1 = ["a man opens a door", "a man sits down"]
PRED_2 = ["a dog jumps", "a dog barks", "the dog wags its tail"]
GT_3 = ["a cat chases a mouse", "the mouse hides"]
PRED_3 = ["a cat chases a mouse"]


def dream_judge():
    extract = "Extract at most 10 key events"
    return routed_reply([
        # event extraction (the caption is lower-cased first, as released)
        ("Video Description: a man opens a door and sits down.", f'{{"events": {PRED_1}}}'),
        ("Video Description: a dog jumps and barks loudly.", f'{{"events": {PRED_2}}}'),
        ("Video Description: a cat chases a mouse. the mouse hides.",
         f'```python\n{{"events": {GT_3}}}\n```'),  # fenced: cleaned as released
        ("Video Description: a cat chases a mouse.\n", f'{{"events": {PRED_3}}}'),
        ("Video Description: garbage case.", "I cannot do that."),  # unreadable: judge failed
        # entailment: recall (reference events vs caption), precision (caption's vs reference)
        (f"Events: {EVENTS_1}", rels("entailment", "neutral")),                  # R1 = 1/2
        (f"Events: {PRED_1}", rels("entailment", "contradiction")),              # P1 = 1/2
        (f"Events: {EVENTS_2}", rels("entailment", "entailment", "neutral")),    # R2 = 2/3
        (f"Events: {PRED_2}", rels("entailment", "entailment", "neutral")),      # P2 = 2/3
        # near-JSON (no outer braces, trailing comma): repaired as released
        (f"Events: {GT_3}", '"events": [{"event": "a", "relationship": "Entailment"}, '
                            '{"event": "b", "relationship": "neutral"},]'),      # R3 = 1/2
        (f"Events: {PRED_3}", rels("entailment")),                               # P3 = 1
        (extract, "<unscripted extraction>"),
    ])  # fmt: skip


def test_dream1k_autodq_by_hand(fault_server, tmp_path):
    data = write_jsonl(tmp_path / "DREAM-1k.jsonl", [
        dream_row(1, "DREAM/live_action", "A man opens a door and walks in.", EVENTS_1, 1, 1, 2),
        dream_row(2, "DREAM/live_action", "A dog jumps, barks and runs away.", EVENTS_2, 2, 2, 3),
        dream_row(3, "DREAM/animation", "A cat chases a mouse. The mouse hides.", None, 4, 1, 5),
        dream_row(4, "DREAM/animation", "Nobody captioned this one.", ["x."], 1, 1, 1),
        dream_row(5, "DREAM/animation", "Whatever.", ["y."], 1, 1, 1),
    ])  # fmt: skip
    captions = write_jsonl(tmp_path / "captions.jsonl", [
        record("1", "A man opens a door and sits down."),
        record("2", "A dog jumps and barks loudly."),
        record("3", "A cat chases a mouse."),
        record("clip-five", "Garbage case.", path="/data/5.mp4"),  # matched by the path's stem
        record("99", "Not in the benchmark."),
    ])  # fmt: skip
    fault_server.reply = dream_judge()
    out = tmp_path / "out"
    assert run_eval(fault_server, "dream1k", "--data", str(data), "--captions", str(captions),
                    *judge_flags(fault_server), "--out", str(out)) == 0  # fmt: skip
    scores, preds = read_out(out)
    o = scores["overall"]
    assert (o["count"], o["judge_failed"]) == (3, 1)
    assert scores["counts"]["missing"] == 1 and scores["missing_items"] == ["4"]
    # live_action: R = P = (1/2 + 2/3) / 2 = 7/12; animation (item 3): R = 1/2, P = 1.
    live = scores["by"]["dataset"]["DREAM/live_action"]
    assert live["recall"] == pytest.approx(7 / 12) and live["precision"] == pytest.approx(7 / 12)
    anim = scores["by"]["dataset"]["DREAM/animation"]
    assert (anim["recall"], anim["precision"], anim["f1"]) == pytest.approx((0.5, 1.0, 2 / 3))
    # Overall: means of the subsets' means, F1 of those: R = 13/24, P = 19/24, F1 = 494/768.
    assert o["recall"] == pytest.approx(13 / 24)
    assert o["precision"] == pytest.approx(19 / 24)
    assert o["f1"] == pytest.approx(494 / 768)
    b = scores["buckets"]
    assert b["subjects"]["<=1"]["recall"] == pytest.approx(0.5)
    assert b["subjects"]["==3"]["count"] == 0 and b["subjects"]["==3"]["recall"] is None
    assert b["events"]["<=3"]["recall"] == pytest.approx(7 / 12)
    assert b["events"]["in [4, 5]"]["precision"] == pytest.approx(1.0)
    assert scores["judge"] == "judge-x" and all(p["judge"] == "judge-x" for p in preds)
    by_id = {p["id"]: p for p in preds}
    assert by_id["5"]["score"] is None and "judge_error" in by_id["5"]
    assert by_id["3"]["events_gt"][0]["relationship"] == "entailment"
    assert (out / "dream1k.png").is_file()
    # Temperature 0 on every first judge call, none sent twice; the unreadable extraction
    # of item 5 is asked 10 times in all, as released (the retries at the API default 1.0).
    first = [str(r.body) for r in fault_server.requests if r.body["temperature"] == 0]
    assert len(first) == len(set(first)) == 3 + 3 + 4 + 1  # item 3 also extracts its events
    retries = [r for r in fault_server.requests if r.body["temperature"] != 0]
    assert len(retries) == 9 and all(r.body["temperature"] == 1.0 for r in retries)
    assert all("garbage case" in str(r.body) for r in retries)
    assert "after 10 judge calls" in by_id["5"]["judge_error"]


def vdc_judge():
    def answer(q: str, text: str):
        return (f"question: {q}DO NOT", text)

    def grade(q: str, text: str):
        return (f"Question: {q}\nCorrect", text)

    return routed_reply([
        answer("How does the camera move?", "It pans left."),
        grade("How does the camera move?", "{'pred': 'yes', 'score': 5}"),
        answer("Is the shot handheld?", "Yes."),
        grade("Is the shot handheld?", "{'pred': 'no', 'score': 1}"),
        answer("What is the camera angle?", "Unknown."),
        grade("What is the camera angle?", "```python\n{'pred': 'no', 'score': 0}\n```"),
        answer("What is the video about?", "A cat."),
        grade("What is the video about?", "{'pred': 'yes', 'score': 4.5}"),
    ])  # fmt: skip


def test_vdc_score_by_hand(fault_server, tmp_path):
    qa = tmp_path / "post_eval"
    qa.mkdir()
    write_jsonl(qa / "camera.jsonl", [
        {"vidA": [{"question": "How does the camera move?", "answer": "pans left", "category": "c"},
                  {"question": "Is the shot handheld?", "answer": "no", "category": "c"}]},
        {"vidB": [{"question": "What is the camera angle?", "answer": "overhead"}]},
    ])  # fmt: skip
    write_jsonl(qa / "short.jsonl", [
        {"vidA": [{"question": "What is the video about?", "answer": "a cat", "category": "s"}]},
    ])  # fmt: skip
    captions = write_jsonl(tmp_path / "caps.jsonl", [
        record("vidA", "The camera pans left over a cat."),
        record("vidB", "A static shot of a road."),
    ])  # fmt: skip
    fault_server.reply = vdc_judge()
    out = tmp_path / "out"
    assert run_eval(fault_server, "vdc", "--data", str(qa), "--captions", str(captions),
                    *judge_flags(fault_server), "--out", str(out)) == 0  # fmt: skip
    scores, preds = read_out(out)
    cam, short = scores["by"]["dimension"]["camera"], scores["by"]["dimension"]["short"]
    # camera: vidA 1/2 right, mean grade 3; vidB 0 and 0. short: vidA 1/1, 4.5.
    # The headline is the released one: vidB (accuracy 0) is dropped from the means.
    assert (cam["accuracy"], cam["score"], cam["count"]) == (
        pytest.approx(0.5), pytest.approx(3.0), 1)  # fmt: skip
    assert (cam["accuracy_all_videos"], cam["score_all_videos"]) == pytest.approx((0.25, 1.5))
    assert (cam["videos"], cam["dropped_zero"]) == (2, 1)
    assert (short["accuracy"], short["score"]) == pytest.approx((1.0, 4.5))
    o = scores["overall"]
    assert (o["accuracy"], o["score"]) == pytest.approx((0.75, 3.75))
    assert (o["accuracy_all_videos"], o["score_all_videos"]) == pytest.approx((0.625, 3.0))
    assert (o["count"], o["videos"], o["dropped_zero"]) == (2, 3, 1)
    assert {p["id"] for p in preds} == {"camera/vidA", "camera/vidB", "short/vidA"}
    assert len(fault_server.requests) == 8


def test_vdc_caption_prompt_is_seeded(fault_server, eval_videos, tmp_path):
    """With an image input the model writes the caption itself, asked with the dimension's
    released prompt chosen by the seed (not an unseeded random.choice)."""
    assert caption_prompt("camera", "v1", 7) == caption_prompt("camera", "v1", 7)
    assert caption_prompt("camera", "v1", 7) in caption_prompts()["camera"]
    assert len({caption_prompt("detailed", "v1", s) for s in range(40)}) > 5
    qa = tmp_path / "camera.jsonl"
    write_jsonl(qa, [{"v1": [{"question": "How does the camera move?", "answer": "pans left"}]}])
    chosen = caption_prompt("camera", "v1", 7)
    fault_server.reply = routed_reply([(chosen, "The camera pans left."), *vdc_judge_rules()])
    out = tmp_path / "out"
    assert run_eval(fault_server, "vdc", "--data", str(qa), "--videos", str(eval_videos),
                    "--input", "grid", "--seed", "7", *judge_flags(fault_server),
                    "--out", str(out)) == 0  # fmt: skip
    scores, preds = read_out(out)
    assert preds[0]["raw"] == "The camera pans left."
    assert scores["overall"]["accuracy"] == 1.0 and scores["seed"] == 7
    asked = [r for r in fault_server.requests if r.images == 1]
    assert len(asked) == 1 and chosen in asked[0].prompt


def vdc_judge_rules():
    return [
        ("question: How does the camera move?DO NOT", "It pans left."),
        ("Question: How does the camera move?\nCorrect", "{'pred': 'yes', 'score': 5}"),
    ]
