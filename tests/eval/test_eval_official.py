"""End to end against the official scorers' behaviour as docs/eval.md states it: tricky
answers of an OpenAI-compatible server (" B", "Answer: C", "", whitespace, bare options) in
both directions, empty answers scored (never failures), the switch back to the official
quirks, and MVBench's answer prefill in both of its forms."""

from __future__ import annotations

import json

import pytest

from diffcap.models.base import ModelRequest
from diffcap.models.chat import render_requests
from support.evals import read_out, run_eval
from support.fault_server import routed_reply
from support.tiny_llava import tiny_llava_dir  # noqa: F401


def _mvbench(tmp_path, rows):
    data = tmp_path / "json"
    data.mkdir()
    (data / "action_sequence.json").write_text(json.dumps(rows))
    return data


def _q(video, question, cands, answer):
    return {"video": video, "question": question, "candidates": cands, "answer": answer}


MV_ROWS = [
    _q("v1.mp4", "Q-empty?", ["cat", "dog"], "dog"),
    _q("v2.mp4", "Q-space?", ["cat", "dog"], "dog"),
    _q("v3.mp4", "Q-lead?", ["cat", "dog"], "dog"),
    _q("v4.mp4", "Q-answer?", ["cat", "dog"], "dog"),
]
MV_REPLIES = [
    ("Q-empty?", ""),  # empty: an answer (wrong; right with --official-quirks)
    ("Q-space?", "  \n"),  # whitespace only: the same
    ("Q-lead?", " B) dog"),  # stripped: right
    ("Q-answer?", "Answer: B"),  # "(answer:": wrong
]


def test_mvbench_empty_answers_are_answers_and_quirks_switch(fault_server, eval_videos, tmp_path):
    data = _mvbench(tmp_path, MV_ROWS)
    fault_server.reply = routed_reply(MV_REPLIES)
    args = ["--data", str(data), "--videos", str(eval_videos), "--input", "grid"]
    out = tmp_path / "out"
    assert run_eval(fault_server, "mvbench", *args, "--out", str(out)) == 0
    scores, preds = read_out(out)
    assert scores["counts"]["failed"] == 0 and scores["counts"]["scored"] == 4
    assert [p["raw"] for p in preds] == ["", "  \n", " B) dog", "Answer: B"]
    assert [p["correct"] for p in preds] == [False, False, True, False]
    o = scores["overall"]
    # lmms-eval's "answered": any non-empty reply (whitespace is not empty).
    assert (o["correct"], o["answered"]) == (1, 3)
    assert o["accuracy_answered"] == pytest.approx(1 / 3)
    # The official check counts the empty replies right ("(" is in every option).
    quirks = tmp_path / "quirks"
    assert run_eval(fault_server, "mvbench", *args, "--official-quirks", "--out", str(quirks)) == 0
    scores, preds = read_out(quirks)
    assert [p["correct"] for p in preds] == [True, True, True, False]
    assert scores["official_quirks"] is True
    # Only the scoring changed: the second eval dir sent the very same requests.
    bodies = [json.dumps(r.body, sort_keys=True) for r in fault_server.requests]
    assert len(bodies) == 8 and sorted(bodies[:4]) == sorted(bodies[4:])


def test_mvbench_assistant_prefill_over_http(fault_server, eval_videos, tmp_path):
    """--prefill assistant: the reply starts with "Best option:(" as a trailing assistant
    message the server continues (vLLM's continue_final_message)."""
    data = _mvbench(tmp_path, MV_ROWS[2:3])
    fault_server.reply = routed_reply([("Q-lead?", "B) dog")])
    out = tmp_path / "out"
    assert run_eval(fault_server, "mvbench", "--data", str(data), "--videos", str(eval_videos),
                    "--input", "grid", "--prefill", "assistant",
                    "--out", str(out)) == 0  # fmt: skip
    scores, preds = read_out(out)
    assert preds[0]["correct"] is True and scores["prefill"] == "assistant"
    (req,) = fault_server.requests
    last = req.body["messages"][-1]
    assert last == {"role": "assistant", "content": "Best option:("}
    assert req.body["continue_final_message"] is True
    assert req.body["add_generation_prompt"] is False
    user = req.body["messages"][-2]["content"][-1]["text"]
    assert user.endswith("Only give the best option.\n") and "Best option:(" not in user


def test_in_process_prefill_starts_the_assistant_turn(tiny_llava_dir):  # noqa: F811
    """The transformers backend renders the prefill after the chat template's assistant
    opener, so the model continues it (what the official notebook does)."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(str(tiny_llava_dir))
    plain = ModelRequest(model="m", prompt="Question?")
    options = ModelRequest.make_options({"prefill": "Best option:("})
    filled = ModelRequest(model="m", prompt="Question?", options=options)
    (a, b), _ = render_requests(processor, [plain, filled])
    assert b == a + "Best option:("


def test_tempcompass_leading_space_answers(fault_server, eval_videos, tmp_path):
    """An OpenAI-compatible server answering " B" scores as the release does (stripped)."""
    q = tmp_path / "questions"
    q.mkdir()
    (q / "multi-choice.json").write_text(json.dumps({
        "v1": {"action": [{"question": "What now?\nA. run\nB. jump", "answer": "B. jump"},
                          {"question": "What then?\nA. run\nB. jump", "answer": "A. run"}]},
    }))  # fmt: skip
    (q / "yes_no.json").write_text(json.dumps({
        "v2": {"speed": [{"question": "Is it slow?", "answer": "yes"},
                         {"question": "Is it fast?", "answer": "no"}]},
    }))  # fmt: skip
    (q / "caption_matching.json").write_text(json.dumps({
        "v3": {"order": [{"question": "Which caption?\nCaption A: x first\nCaption B: y first",
                          "answer": "Caption B: y first"},
                         {"question": "Which sentence?\nSentence A: p\nSentence B: q",
                          "answer": "Sentence A: p"}]},
    }))  # fmt: skip
    fault_server.reply = routed_reply([
        ("What now?", " B"), ("What then?", ""),          # right; empty: no rule, 0
        ("Is it slow?", " Yes"), ("Is it fast?", " "),    # right; blank: no rule, 0
        ("Which caption?", " B."), ("Which sentence?", "B"),  # bare options: right; wrong
    ])  # fmt: skip
    out = tmp_path / "out"
    assert run_eval(fault_server, "tempcompass", "--data", str(q), "--videos", str(eval_videos),
                    "--input", "frames", "--num-frames", "2", "--out", str(out)) == 0  # fmt: skip
    scores, preds = read_out(out)
    assert scores["counts"]["failed"] == 0
    o = scores["overall"]
    assert (o["multi-choice"], o["yes_no"], o["caption_matching"]) == (0.5, 0.5, 0.5)
    assert [p["answered"] for p in preds] == [True, False, True, False, True, True]
    assert [p["extracted"] for p in preds] == ["B", None, "Yes", None, "B.", "B"]


def test_videomme_answer_prefixes_and_empty(fault_server, eval_videos, tmp_path):
    rows = [
        {"video_id": "001", "videoID": f"v{i}", "duration": "short", "domain": "Knowledge",
         "sub_category": "Law", "question_id": f"001-{i}", "task_type": "OCR Problems",
         "question": f"Q{i}?", "options": ["A. a", "B. b", "C. c", "D. d"], "answer": "C"}
        for i in range(1, 5)
    ]  # fmt: skip
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    fault_server.reply = routed_reply([
        ("Q1?", "Answer: C"),                 # read as C (the deleted parser read A)
        ("Q2?", ""),                          # empty: unanswered, not failed
        ("Q3?", " The correct option C"),     # read as C
        ("Q4?", "Option: B"),                 # B: wrong
    ])  # fmt: skip
    out = tmp_path / "out"
    assert run_eval(fault_server, "videomme", "--data", str(data), "--videos", str(eval_videos),
                    "--input", "grid", "--out", str(out)) == 0  # fmt: skip
    scores, preds = read_out(out)
    assert scores["counts"]["failed"] == 0
    assert [p["extracted"] for p in preds] == ["C", "", "C", "B"]
    o = scores["overall"]
    assert (o["accuracy"], o["answered"], o["accuracy_all"]) == (pytest.approx(2 / 3), 3, 0.5)
