"""TempCompass, MVBench and Video-MME end to end: tiny fixture files in each official
schema, real videos decoded into grid / frames / keyframes, a loopback model with scripted
answers, and the expected numbers worked out by hand in each test."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from support.evals import read_out, run_eval
from support.fault_server import routed_reply


def _mvbench_files(tmp_path):
    data = tmp_path / "json"
    data.mkdir()
    (data / "action_sequence.json").write_text(json.dumps([
        {"video": "v1.mp4", "question": "What happened first?",
         "candidates": ["open door", "sit down", "wave"], "answer": "open door"},
        {"video": "v2.mp4", "question": "What did he take?", "candidates": ["cup", "book"],
         "answer": "book"},
        {"video": "v3.mp4", "question": "Where did he go?", "candidates": ["left", "right", "up"],
         "answer": "up"},
    ]))  # fmt: skip
    (data / "moving_count.json").write_text(json.dumps([
        {"video": "v4.mp4", "question": "How many balls move?", "candidates": ["1", "2", "3"],
         "answer": "2", "start": 0.0, "end": 0.5},
        {"video": "v5.mp4", "question": "How many cubes?", "candidates": ["0", "4"], "answer": "0"},
        {"video": "v6.mp4", "question": "Which moves?", "candidates": ["sphere", "cube"],
         "answer": "cube"},
    ]))  # fmt: skip
    return data


_MVBENCH_ANSWERS = [
    ("What happened first?", "A) open door"),   # "(a)" : right
    ("What did he take?", "(B) book"),          # "((b)" contains "(b)": right
    ("Where did he go?", "The answer is C"),    # "(the": wrong, no letter
    ("How many balls move?", "b."),             # "(b." -> "(b" in "(b)": right
    ("How many cubes?", "Not sure."),           # wrong, no letter
    ("Which moves?", "A"),                      # "(a" vs "(b)": wrong, answered A
]  # fmt: skip


def test_mvbench_grid_official_check_and_answered_only(fault_server, eval_videos, tmp_path):
    data = _mvbench_files(tmp_path)
    fault_server.reply = routed_reply([
        ("What happened first?", "A) open door"),   # "(a)" : right
        ("What did he take?", "(B) book"),          # "((b)" contains "(b)": right
        ("Where did he go?", "The answer is C"),    # "(the": wrong, no letter
        ("How many balls move?", "b."),             # "(b." -> "(b" in "(b)": right
        ("How many cubes?", "Not sure."),           # wrong, no letter
        ("Which moves?", "A"),                      # "(a" vs "(b)": wrong, answered A
    ])  # fmt: skip
    out = tmp_path / "out"
    assert run_eval(fault_server, "mvbench", "--data", str(data), "--videos", str(eval_videos),
                    "--input", "grid", "--out", str(out)) == 0  # fmt: skip
    scores, preds = read_out(out)
    o = scores["overall"]
    # 3 of 6 right by the released check; every reply is non-empty (lmms-eval's "answered").
    assert (o["count"], o["correct"], o["answered"]) == (6, 3, 6)
    assert o["accuracy"] == pytest.approx(3 / 6)
    assert o["accuracy_answered"] == pytest.approx(3 / 6)
    assert scores["by"]["task"]["action_sequence"]["accuracy"] == pytest.approx(2 / 3)
    assert scores["by"]["task"]["moving_count"]["accuracy"] == pytest.approx(1 / 3)
    assert o["task_mean_accuracy"] == pytest.approx(0.5)
    assert [p["extracted"] for p in preds] == ["A", "B", "", "B", "", "A"]
    assert all(p["model"] == "tiny" for p in preds)
    # The paper's input: one grid image per question, the official prompts around it.
    sent = fault_server.requests
    assert len(sent) == 6 and all(r.images == 1 for r in sent)
    # An OpenAI-compatible server: the prefill's nearest form ends the user turn.
    assert all(r.prompt.endswith("\nOnly give the best option.\nBest option:(") for r in sent)
    # The system prompt is the system turn and starts the user turn (system_llm=True).
    assert all(r.prompt.count("Carefully watch the video") == 2 for r in sent)
    assert all(r.body["messages"][-1]["role"] == "user" for r in sent)
    assert (out / "mvbench.png").stat().st_size > 1000
    # A rerun sends nothing: every item is done.
    assert run_eval(fault_server, "mvbench", "--data", str(data), "--videos", str(eval_videos),
                    "--input", "grid", "--out", str(out)) == 0  # fmt: skip
    assert len(fault_server.requests) == 6


def test_an_eval_on_ray_scores_the_same_as_on_the_local_executor(
    fault_server, eval_videos, tmp_path
):
    """``--engine ray``: the same stages on Ray actors, the same answers and scores."""
    ray = pytest.importorskip("ray")
    data = _mvbench_files(tmp_path)
    fault_server.reply = routed_reply(_MVBENCH_ANSWERS)
    outs = {}
    try:
        for engine in ("local", "ray"):
            outs[engine] = tmp_path / engine
            args = ["--data", str(data), "--videos", str(eval_videos), "--input", "grid"]
            code = run_eval(fault_server, "mvbench", *args, "--out", str(outs[engine]),
                            "--engine", engine, "--workers", "2")  # fmt: skip
            assert code == 0
    finally:
        ray.shutdown()
    (a_scores, a_preds), (b_scores, b_preds) = read_out(outs["local"]), read_out(outs["ray"])
    assert a_scores["overall"] == b_scores["overall"] and a_scores["overall"]["correct"] == 3
    assert [(p["id"], p["extracted"]) for p in a_preds] == [
        (p["id"], p["extracted"]) for p in b_preds
    ]
    assert len(fault_server.requests) == 2 * 6  # each eval dir asks every item once
    try:  # a rerun on Ray sends nothing: every item is done and every call cached
        args = ["--data", str(data), "--videos", str(eval_videos), "--input", "grid"]
        assert run_eval(fault_server, "mvbench", *args, "--out", str(outs["ray"]),
                        "--engine", "ray", "--workers", "2") == 0  # fmt: skip
    finally:
        ray.shutdown()
    assert len(fault_server.requests) == 12


def test_an_eval_with_the_cache_in_postgresql_writes_no_answer_to_eval_sqlite(
    fault_server, eval_videos, pg_server, pg_url, tmp_path
):
    """``--engine-cache-url``: the eval's model calls are cached in PostgreSQL as a run's
    are (a cluster's workers never write the eval dir's SQLite); a rerun replays them."""
    import sqlite3

    data = _mvbench_files(tmp_path)
    fault_server.reply = routed_reply(_MVBENCH_ANSWERS)
    out = tmp_path / "out"
    args = ["--data", str(data), "--videos", str(eval_videos), "--input", "grid",
            "--out", str(out), "--engine-cache-url", pg_url]  # fmt: skip
    assert run_eval(fault_server, "mvbench", *args) == 0
    scores, _ = read_out(out)
    assert scores["overall"]["correct"] == 3
    db = pg_url.rsplit("/", 1)[1]
    assert pg_server.sql("SELECT COUNT(*) FROM diffcap_requests", db=db)[0][0] == 6
    with sqlite3.connect(out / "eval.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 0
    (out / "predictions.jsonl").unlink()
    assert run_eval(fault_server, "mvbench", *args) == 0
    assert len(fault_server.requests) == 6  # nothing sent twice
    assert (out / "predictions.jsonl").is_file()


def test_videomme_parquet_frames_and_letter_extraction(fault_server, eval_videos, tmp_path):
    def row(qid, vid, duration, task, question, answer):
        return {
            "video_id": qid[:3],
            "duration": duration,
            "domain": "Knowledge",
            "sub_category": "Astronomy",
            "videoID": vid,
            "question_id": qid,
            "task_type": task,
            "question": question,
            "options": ["A. one", "B. two", "C. three", "D. four"],
            "answer": answer,
        }

    rows = [
        row("001-1", "v1", "short", "Counting Problem", "How many stars?", "C"),
        row("001-2", "v2", "short", "OCR Problems", "Which word?", "A"),
        row("002-1", "v3", "medium", "OCR Problems", "What does the sign say?", "B"),
        row("002-2", "v4", "medium", "Counting Problem", "How many cars?", "D"),
        row("003-1", "v5", "long", "Counting Problem", "How many birds?", "A"),
    ]  # fmt: skip
    data = tmp_path / "videomme"
    data.mkdir()
    pq.write_table(pa.Table.from_pylist(rows), data / "test-00000-of-00001.parquet")
    fault_server.reply = routed_reply([
        ("How many stars?", "The best answer is C."),   # C: right
        ("Which word?", "c"),                           # lower case: no letter, unanswered
        # 10 words, so the capital B of "Based" is taken (the released rule): right
        ("What does the sign say?", "Based on the video, the sign says hello there friend"),
        ("How many cars?", "The answer is A"),          # A: wrong
        ("How many birds?", "i think it is probably the first one but it is hard to say"),
    ])  # fmt: skip
    out = tmp_path / "out"
    assert run_eval(fault_server, "videomme", "--data", str(data), "--videos", str(eval_videos),
                    "--input", "frames", "--num-frames", "4", "--out", str(out)) == 0  # fmt: skip
    scores, preds = read_out(out)
    o = scores["overall"]
    assert (o["count"], o["correct"], o["answered"]) == (5, 2, 3)
    # The release's figure: correct / answered; diffcap's correct / all beside it.
    assert o["accuracy"] == pytest.approx(2 / 3)
    assert o["accuracy_all"] == pytest.approx(0.4)
    d = scores["by"]["duration"]
    assert (d["short"]["accuracy"], d["medium"]["accuracy"], d["long"]["accuracy"]) == (
        1.0, 0.5, None)  # fmt: skip
    assert (d["short"]["accuracy_all"], d["long"]["accuracy_all"]) == (0.5, 0.0)
    # The release's per-duration tables.
    per = scores["by_duration"]["medium"]["task_type"]
    assert (per["OCR Problems"]["accuracy"], per["Counting Problem"]["accuracy"]) == (1.0, 0.0)
    assert scores["by"]["task_type"]["OCR Problems"]["correct"] == 1
    assert [p["extracted"] for p in preds] == ["C", "", "B", "A", ""]
    assert all(r.images == 4 for r in fault_server.requests)
    assert all(r.prompt.rstrip().endswith("The best answer is:") for r in fault_server.requests)


def test_tempcompass_keyframes_three_formats(fault_server, eval_videos, tmp_path):
    q = tmp_path / "questions"
    q.mkdir()
    (q / "multi-choice.json").write_text(json.dumps({
        "v1": {"action": [{"question": "What is the man doing?\nA. running\nB. jumping\nC. sitting",
                           "answer": "B. jumping"}]},
        "v2": {"speed": [{"question": "What is the speed of the video?\nA. normal\nB. slow motion",
                          "answer": "A. normal"}]},
    }))  # fmt: skip
    (q / "yes_no.json").write_text(json.dumps({
        "v3": {"direction": [{"question": "Is the car moving left?", "answer": "yes"},
                             {"question": "Is the car moving right?", "answer": "no"}]},
        "v4": {"order": [{"question": "Does the man sit before he stands?", "answer": "no"}]},
    }))  # fmt: skip
    (q / "caption_matching.json").write_text(json.dumps({
        "v5": {"attribute_change": [{
            "question": "Which caption matches the video better?\nCaption A: The light turns red"
                        "\nCaption B: The light turns green",
            "answer": "Caption B: The light turns green"}]},
        "v6": {"action": [{
            "question": "Which sentence matches the video better?\nSentence A: A dog runs\n"
                        "Sentence B: A cat sleeps",
            "answer": "Sentence A: A dog runs"}]},
    }))  # fmt: skip
    fault_server.reply = routed_reply([
        ("What is the man doing?", "B."),               # rule "B.": right
        ("What is the speed", "(A) normal"),            # no rule matches: 0, unanswered
        ("moving left?", "Yes, it is."),                # yes: right
        ("moving right?", "NO."),                       # no: right
        ("sit before", "Maybe."),                       # neither: 0, unanswered
        ("Caption A: The light turns red", "Caption B."),   # the label: right
        ("Sentence A: A dog runs", "A cat sleeps"),     # the other sentence: wrong
    ])  # fmt: skip
    out = tmp_path / "out"
    assert run_eval(fault_server, "tempcompass", "--data", str(q), "--videos", str(eval_videos),
                    "--input", "keyframes", "--embedder", "weightless",
                    "--out", str(out)) == 0  # fmt: skip
    scores, _ = read_out(out)
    o = scores["overall"]
    assert (o["count"], o["correct"], o["answered"]) == (7, 4, 5)
    # Per format first (the release's "avg" of each), then diffcap's mean and pooled figures.
    assert list(o)[:3] == ["multi-choice", "yes_no", "caption_matching"]
    assert (o["multi-choice"], o["yes_no"], o["caption_matching"]) == pytest.approx(
        (1 / 2, 2 / 3, 1 / 2))  # fmt: skip
    assert o["format_mean_accuracy"] == pytest.approx((1 / 2 + 2 / 3 + 1 / 2) / 3)
    assert o["pooled_accuracy"] == pytest.approx(4 / 7)
    assert o["match_rate"] == pytest.approx(5 / 7)
    dims = {k: v["accuracy"] for k, v in scores["by"]["dimension"].items()}
    assert dims == {"action": 0.5, "speed": 0.0, "direction": 1.0, "order": 0.0,
                    "attribute_change": 1.0}  # fmt: skip
    tasks = {k: v["correct"] for k, v in scores["by"]["task"].items()}
    assert tasks == {"multi-choice": 1, "yes_no": 2, "caption_matching": 1}
    assert scores["by_task_dimension"]["yes_no"]["direction"]["accuracy"] == 1.0
    sent = fault_server.requests
    assert all(r.images >= 1 for r in sent)
    assert any("Please answer yes or no:" in r.prompt for r in sent)


def test_caption_as_proxy_text_model_answers_from_captions(fault_server, tmp_path):
    """--input caption: no image is sent; the answering text model (--answer-model) reads the
    video's diffcap caption, matched to the item by the record's video id or file stem."""
    q = tmp_path / "yes_no.json"
    q.write_text(json.dumps({
        "clipA": {"speed": [{"question": "Is it slow motion?", "answer": "yes"}]},
        "clipB": {"order": [{"question": "Does the cat jump first?", "answer": "no"}]},
        "clipC": {"order": [{"question": "Is there a dog?", "answer": "no"}]},
    }))  # fmt: skip
    caps = tmp_path / "captions.jsonl"
    caps.write_text("".join(json.dumps(r) + "\n" for r in [
        {"video_id": "clipA", "video_path": "/v/clipA.mp4", "duration": 1, "keyframes": [],
         "mode": "fast", "captions": [{"idx": "-1", "content": "In slow motion, a wave breaks."}]},
        {"video_id": "other-id", "video_path": "/v/clipB.mp4", "duration": 1, "keyframes": [],
         "mode": "fast", "captions": [{"idx": "-1", "content": "A dog runs, then a cat jumps."}]},
    ]))  # fmt: skip
    fault_server.reply = routed_reply([
        ("In slow motion, a wave breaks.", "Yes."),
        ("A dog runs, then a cat jumps.", "Yes, the cat jumps first."),
    ])  # fmt: skip
    out = tmp_path / "out"
    args = ["--data", str(q), "--captions", str(caps), "--input", "caption"]
    assert run_eval(fault_server, "tempcompass", *args, "--answer-model", "texty",
                    "--out", str(out)) == 0  # fmt: skip
    scores, preds = read_out(out)
    assert (scores["overall"]["count"], scores["overall"]["correct"]) == (2, 1)
    assert scores["counts"]["missing"] == 1 and scores["missing_items"] == ["yes_no/clipC/order/0"]
    assert scores["model"] == "texty" and {p["model"] for p in preds} == {"texty"}
    sent = fault_server.requests
    assert len(sent) == 2 and all(r.images == 0 for r in sent)
    assert all(r.body["model"] == "texty" for r in sent)
    assert any("Here is a detailed description of a video:" in r.prompt for r in sent)


def test_tempcompass_judge_reads_what_no_rule_reads(fault_server, tmp_path):
    """With --judge-model the release's fallback runs: answers no rule reads are rated by the
    judge's "Correct"/"Incorrect"; an unreadable rating counts 0 (released after retries)."""
    q = tmp_path / "multi-choice.json"
    q.write_text(json.dumps({"c1": {"action": [
        {"question": "What does he do?\nA. runs\nB. sits", "answer": "B. sits"},
        {"question": "What does she do?\nA. swims\nB. reads", "answer": "A. swims"},
        {"question": "What does it do?\nA. flies\nB. walks", "answer": "A. flies"},
        {"question": "What do they do?\nA. sing\nB. dance", "answer": "B. dance"},
    ]}}))  # fmt: skip
    # The judge prompts come from the user's copy of the release (here, stand-in texts).
    (tmp_path / "prompt_templates.py").write_text(STAND_IN_PROMPTS)
    caps = tmp_path / "c.jsonl"
    caps.write_text(
        json.dumps(
            {
                "video_id": "c1",
                "video_path": "/v/c1.mp4",
                "duration": 1,
                "keyframes": [],
                "mode": "fast",
                "captions": [{"idx": "-1", "content": "A scene."}],
            }
        )
        + "\n"
    )
    fault_server.reply = routed_reply([
        ("Model Prediction: He is sitting", "Correct."),
        ("Model Prediction: She reads a book", "Incorrect"),
        ("Model Prediction: it flies away", "I am not sure."),
        ("What does he do?", "He is sitting"),        # no rule: judged right
        ("What does she do?", "She reads a book"),    # no rule: judged wrong
        ("What does it do?", "it flies away"),        # no rule, unreadable rating: 0
        ("What do they do?", "B."),                   # the rule: right, no judge call
    ])  # fmt: skip
    out = tmp_path / "out"
    assert run_eval(fault_server, "tempcompass", "--data", str(q), "--captions", str(caps),
                    "--input", "caption", "--judge-model", "judge-x", "--judge-api-base",
                    fault_server.base_url, "--out", str(out)) == 0  # fmt: skip
    scores, preds = read_out(out)
    o = scores["overall"]
    assert (o["count"], o["correct"], o["answered"]) == (4, 2, 1)
    assert [p["correct"] for p in preds] == [True, False, False, True]
    judged = [r for r in fault_server.requests if r.body["model"] == "judge-x"]
    # The unreadable rating is asked 11 times in all (the release's 10 retries), then 0.
    assert len(judged) == 1 + 1 + 11
    assert [p.get("judge_calls") for p in preds] == [1, 1, 11, None]
    assert all("You are an AI assistant for question answering." in r.prompt for r in judged)
    assert all(r.prompt.startswith("You are an AI") for r in judged)
    assert all("STAND-IN MC PROMPT\nMulti-Choice Question:\n" in r.prompt for r in judged)
    assert all("Ground-Truth Answer:" in r.prompt for r in judged)


STAND_IN_PROMPTS = (
    'caption_evaluation_prompt = """STAND-IN CAPTION PROMPT"""\n'
    'multi_choice_evaluation_prompt = """STAND-IN MC PROMPT"""\n'
    'yes_no_evaluation_prompt = "STAND-IN YN PROMPT"\n'
    "caption_matching_evaluation_prompt = 'STAND-IN CM PROMPT'\n"
    "raise SystemExit('never executed')\n"
)
