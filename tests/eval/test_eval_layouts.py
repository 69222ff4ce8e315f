"""Every published layout of each benchmark's files loads, with small fixtures in each:
TempCompass's repository root, questions/ folder and Hugging Face Parquet (captioning
included), DREAM-1K's messages layout, its previous file and the Hugging Face metadata,
MVBench's frame-folder videos, and Video-MME's subtitles."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from diffcap.eval.base import BenchmarkFileError
from diffcap.eval.dream1k import Dream1K
from diffcap.eval.inputs import VideoIndex
from diffcap.eval.tempcompass_data import load_items
from diffcap.eval.videomme import read_srt, subtitle_lines
from support.evals import read_out, run_eval
from support.fault_server import routed_reply

STAND_IN_PROMPTS = (
    'caption_evaluation_prompt = """\nSTAND-IN CAPTION PROMPT \\\ncontinued\n"""\n'
    'multi_choice_evaluation_prompt = "STAND-IN MC"\n'
    'yes_no_evaluation_prompt = "STAND-IN YN"\n'
    'caption_matching_evaluation_prompt = "STAND-IN CM"\n'
)
MC = {"v1": {"action": [{"question": "What is he doing?\nA. dunking\nB. passing",
                         "answer": "A. dunking"}]}}  # fmt: skip
YN = {"v1": {"action": [{"question": "Is he dunking?", "answer": "yes"}]}}
CAPTIONING = {"v1": {"action": [
    {"question": "Describe it.\nInformation A: dunking\nGenerated Caption:", "answer": "A. x"},
    {"question": "Caption it.\nInformation A: dunking\nGenerated Caption:", "answer": "A. x"},
]}}  # fmt: skip


def _tempcompass_repo(root):
    (root / "questions").mkdir(parents=True)
    (root / "prompt_templates.py").write_text(STAND_IN_PROMPTS)
    meta = {
        "v1": {
            "eval_dim": {
                "action": {"subject": "man", "action": "dunking", "type": "fine-grained action"},
                "speed": None,
            }
        }
    }
    (root / "meta_info.json").write_text(json.dumps(meta))  # fmt: skip
    for name, data in (("multi-choice", MC), ("yes_no", YN), ("captioning", CAPTIONING)):
        (root / "questions" / f"{name}.json").write_text(json.dumps(data))
    return root


def test_tempcompass_repository_root_with_captioning(fault_server, eval_videos, tmp_path):
    root = _tempcompass_repo(tmp_path / "TempCompass")
    fault_server.reply = routed_reply([
        # the judge answers the video's first multi-choice question from the caption
        ("Video Description:A man dunks.", "Reasoning: dunks.\nAnswer: A. dunking"),
        ("Video Description:Nothing.", "Answer: None of the choices are correct"),
        ("Describe it.", " A man dunks."),
        ("Caption it.", "Nothing."),
        ("What is he doing?", "A"),
        ("Is he dunking?", "no"),
    ])  # fmt: skip
    out = tmp_path / "out"
    assert run_eval(fault_server, "tempcompass", "--data", str(root), "--videos",
                    str(eval_videos), "--input", "grid", "--judge-model", "judge-x",
                    "--judge-api-base", fault_server.base_url, "--out", str(out)) == 0  # fmt: skip
    scores, preds = read_out(out)
    o = scores["overall"]
    assert (o["multi-choice"], o["yes_no"], o["captioning"]) == (1.0, 0.0, 0.5)
    assert o["format_mean_accuracy"] == pytest.approx(0.5)
    assert o["pooled_accuracy"] == pytest.approx(2 / 4)
    judged = [r for r in fault_server.requests if r.body["model"] == "judge-x"]
    assert len(judged) == 2
    # The user's prompt text (a backslash-continued string, read without running the file),
    # then the caption and the first multi-choice question of that video and dimension.
    assert all("STAND-IN CAPTION PROMPT continued\n" in r.prompt for r in judged)
    assert all(r.prompt.endswith("Multi-Choice Question:\n" + MC["v1"]["action"][0]["question"]
                                 + "\n") for r in judged)  # fmt: skip
    assert [p.get("rating") for p in preds if p["dims"]["task"] == "captioning"] == [1, 0]
    # The release's second table: fine-grained aspects from its meta_info.json.
    assert scores["by"]["aspect"]["fine-grained action"]["accuracy"] == 0.5
    assert scores["by_task_aspect"]["yes_no"]["fine-grained action"]["accuracy"] == 0.0


def test_tempcompass_judge_prompts_needed_with_a_judge(fault_server, tmp_path, capsys):
    q = tmp_path / "questions"
    q.mkdir()
    (q / "multi-choice.json").write_text(json.dumps(MC))
    code = run_eval(fault_server, "tempcompass", "--data", str(q), "--captions",
                    str(tmp_path / "none.jsonl"), "--input", "caption", "--judge-model", "j",
                    "--judge-api-base", fault_server.base_url,
                    "--out", str(tmp_path / "o"))  # fmt: skip
    assert code == 2 and "prompt_templates.py" in capsys.readouterr().err
    assert fault_server.requests == []


def test_tempcompass_layouts_give_the_same_items(tmp_path):
    root = _tempcompass_repo(tmp_path / "repo")
    from_root = load_items(root)
    assert load_items(root / "questions") == from_root
    assert [i.dims["task"] for i in from_root] == ["multi-choice", "yes_no"] + ["captioning"] * 2
    assert from_root[2].data == {"mc_question": MC["v1"]["action"][0]["question"],
                                 "mc_answer": "A. dunking"}  # fmt: skip
    # One file: its format from its name; captioning needs multi-choice.json beside it.
    assert load_items(root / "questions" / "yes_no.json") == from_root[1:2]
    (root / "questions" / "multi-choice.json").unlink()
    with pytest.raises(BenchmarkFileError, match=r"multi-choice\.json beside it"):
        load_items(root / "questions" / "captioning.json")
    # The Hugging Face dataset: a folder per format, Parquet rows with "dim".
    hf = tmp_path / "hf"
    for fmt, rows in (
        ("multi-choice", [{"video_id": "v1", "dim": "action", **MC["v1"]["action"][0]}]),
        ("yes_no", [{"video_id": "v1", "dim": "action", **YN["v1"]["action"][0]}]),
        ("captioning", [{"video_id": "v1", "dim": "action", **q, "mc_question":
                         MC["v1"]["action"][0]["question"], "mc_answer": "A. dunking"}
                        for q in CAPTIONING["v1"]["action"]]),
    ):  # fmt: skip
        (hf / fmt).mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), hf / fmt / "test-00000-of-00001.parquet")
    from_hf = load_items(hf)
    assert [(i.item_id, i.question, i.answer, i.data) for i in from_hf] == [
        (i.item_id, i.question, i.answer, i.data) for i in from_root
    ]
    # The hub's converted branch: <format>/test/0000.parquet.
    for fmt in ("multi-choice", "yes_no", "captioning"):
        (hf / fmt / "test").mkdir()
        (hf / fmt / "test-00000-of-00001.parquet").rename(hf / fmt / "test" / "0000.parquet")
    assert [i.item_id for i in load_items(hf)] == [i.item_id for i in from_root]


def _dream_rows():
    events = ["A man opens a door.", "The man walks in."]
    messages = {
        "messages": [
            {"role": "user", "content": [
                {"reference": None, "text": None, "type": "video",
                 "video": {"video_file": "<placeholder>"}},
                {"reference": None, "text": "Describe the video in detail.", "type": "text",
                 "video": None}]},
            {"role": "assistant", "content": [
                {"reference": "A man opens a door and walks in.", "text": "", "type": "text",
                 "video": None}]},
        ],
        "dataset": "DREAM/live_action", "task": "video/caption", "idx": 7,
        "extra_info": {"duration": 3.2, "events": events, "n_events": 2, "n_shots": 1,
                       "n_subjects": 1},
        "vid": 7,
    }  # fmt: skip
    previous = {
        "idx": 7, "dataset": "DREAM/live_action", "video_file": "<placeholder>", "vid": 7,
        "text": {"prompt": "<video>\nDescribe the video in detail.",
                 "response": "A man opens a door and walks in."},
        "extra_info": {"duration": 3.2, "n_subjects": 1, "n_shots": 1, "events": events,
                       "n_events": 2},
    }  # fmt: skip
    hub = {
        "idx": "7", "video_file": "7.mp4", "source": "DREAM/live_action", "duration": "3.2",
        "description": "A man opens a door and walks in.", "events": json.dumps(events),
        "n_subjects": "1", "n_shots": "1", "n_events": "2",
    }  # fmt: skip
    return messages, previous, hub


def test_dream1k_current_previous_and_hub_layouts(tmp_path):
    messages, previous, hub = _dream_rows()
    (tmp_path / "main").mkdir()
    (tmp_path / "main" / "DREAM-1k.jsonl").write_text(json.dumps(messages) + "\n")
    (tmp_path / "old.jsonl").write_text(json.dumps(previous) + "\n")
    (tmp_path / "hf" / "json").mkdir(parents=True)
    (tmp_path / "hf" / "json" / "metadata.json").write_text(json.dumps([hub]))
    bench = Dream1K()
    (now,) = bench.load(tmp_path / "main")
    (old,) = bench.load(tmp_path / "old.jsonl")
    (hf,) = bench.load(tmp_path / "hf")
    for it in (now, old, hf):
        assert (it.item_id, it.answer, it.dims) == (
            "7",
            "A man opens a door and walks in.",
            {"dataset": "DREAM/live_action"},
        )
        assert it.data["events"] == ["A man opens a door.", "The man walks in."]
        assert it.data["prompt"] == "Describe the video in detail."
        assert it.data["counts"] == {"subjects": 1, "shots": 1, "events": 2}
    assert hf.data["keys"] == ["7", "7"] and now.data["keys"] == ["7"]
    broken = dict(messages, messages=[messages["messages"][0]])  # no assistant turn
    (tmp_path / "bad.jsonl").write_text(json.dumps(broken) + "\n")
    with pytest.raises(BenchmarkFileError, match=r"bad\.jsonl:1: messages: missing"):
        bench.load(tmp_path / "bad.jsonl")


def _frames(folder, n, size=(32, 24)):
    folder.mkdir(parents=True)
    for i in range(1, n + 1):  # 00001.jpg... as MVBench's tvqa frames
        Image.new("RGB", size, (i * 20 % 256, 0, 0)).save(folder / f"{i:05d}.jpg")


def test_mvbench_frame_folder_videos(fault_server, eval_videos, tmp_path):
    videos = tmp_path / "video"
    _frames(videos / "tvqa" / "frames_fps3_hq" / "s01e01_clip_00", 12)  # 4 s at 3 fps
    data = tmp_path / "json"
    data.mkdir()
    (data / "episodic_reasoning.json").write_text(json.dumps([
        {"video": "s01e01_clip_00", "question": "Who talks?", "candidates": ["A man", "Nobody"],
         "answer": "A man", "start": 1.0, "end": 3.0},
    ]))  # fmt: skip
    assert VideoIndex(videos).find("s01e01_clip_00").name == "s01e01_clip_00"
    fault_server.reply = routed_reply([("Who talks?", "A")])
    for mode, n_images in (("grid", 1), ("frames", 4)):
        out = tmp_path / mode
        assert run_eval(fault_server, "mvbench", "--data", str(data), "--videos", str(videos),
                        "--input", mode, "--num-frames", "4", "--out", str(out)) == 0  # fmt: skip
        scores, preds = read_out(out)
        assert preds[0]["correct"] is True and scores["counts"]["missing"] == 0
        assert fault_server.requests[-1].images == n_images
        (times_file,) = (out / "inputs" / mode).glob("*/times.json")
        # the span 1-3 s: the midpoints of its segments
        times = json.loads(times_file.read_text())
        assert times[0] > 1.0 and times[-1] < 3.0 and len(times) == (16 if mode == "grid" else 4)


SRT = (
    '1\n00:00:00,000 --> 00:00:00,300\n<font color="white" size=".72c">first line</font>\n\n'
    "2\n00:00:00,300 --> 00:00:00,350\nbetween the frames\n\n"
    '3\n00:00:00,600 --> 00:00:02,000\n<font color="white" size=".72c">third</font>\nline\n'
)


def test_videomme_subtitles_at_the_sampled_frames(fault_server, eval_videos, tmp_path):
    subs = tmp_path / "subtitle"
    subs.mkdir()
    (subs / "v1.srt").write_text(SRT)
    assert read_srt(subs / "v1.srt")[0] == (0.0, 0.3, "first line")
    assert subtitle_lines(subs, "v1", None) == ["first line", "between the frames", "third line"]
    rows = [
        {"video_id": "001", "videoID": v, "duration": "short", "domain": "Knowledge",
         "sub_category": "Law", "question_id": f"q-{v}", "task_type": "OCR Problems",
         "question": f"What is said in {v}?", "options": ["A. a", "B. b", "C. c", "D. d"],
         "answer": "A"}
        for v in ("v1", "v2")
    ]  # fmt: skip
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    fault_server.reply = routed_reply([("What is said", "A")])
    out = tmp_path / "out"
    assert run_eval(fault_server, "videomme", "--data", str(data), "--videos", str(eval_videos),
                    "--input", "frames", "--num-frames", "4", "--subtitles", str(subs),
                    "--out", str(out)) == 0  # fmt: skip
    scores, preds = read_out(out)
    assert scores["subtitles"] == str(subs.absolute())
    by_video = {("v1" if "in v1?" in r.prompt else "v2"): r.prompt for r in fault_server.requests}
    first, second = by_video["v1"], by_video["v2"]
    # frames at 0.125, 0.375, 0.625, 0.875 s: the lines on screen then, not the one between
    assert "This video's subtitles are listed below:\nfirst line\nthird line\nSelect" in first
    assert "between the frames" not in first
    assert "listed below:\nNo subtitles available\nSelect the best answer" in second
    assert [p["subtitle_lines"] for p in preds] == [2, 0]
    code = run_eval(fault_server, "mvbench", "--data", str(data), "--subtitles", str(subs),
                    "--out", str(tmp_path / "x"))  # fmt: skip
    assert code == 2


def test_tempcompass_captioning_empty_judge_answer(fault_server, eval_videos, tmp_path):
    """An empty judge answer rates a captioning question 0; the release's -1 (which lowers
    the format's sum) comes back with --official-quirks."""
    root = _tempcompass_repo(tmp_path / "TempCompass")
    (root / "questions" / "yes_no.json").unlink()
    fault_server.reply = routed_reply([
        ("Video Description:A man dunks.", "Answer: A. dunking"),
        ("Video Description:Nothing.", ""),
        ("Describe it.", "A man dunks."),
        ("Caption it.", "Nothing."),
        ("What is he doing?", "A"),
    ])  # fmt: skip
    args = ["--data", str(root), "--videos", str(eval_videos), "--input", "grid",
            "--judge-model", "judge-x", "--judge-api-base", fault_server.base_url]  # fmt: skip
    for flags, captioning in (([], 0.5), (["--official-quirks"], 0.0)):
        out = tmp_path / f"out{len(flags)}"
        assert run_eval(fault_server, "tempcompass", *args, *flags, "--out", str(out)) == 0
        scores, _ = read_out(out)
        assert scores["overall"]["captioning"] == captioning
        assert scores["counts"]["failed"] == 0
