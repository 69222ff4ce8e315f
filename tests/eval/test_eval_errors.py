"""Bad benchmark files and options: one line naming the file, the line (or item) and the
field, exit code 2, and nothing sent to any model."""

from __future__ import annotations

import json

import pytest

from support.evals import run_eval, write_jsonl


def dream(idx: int, **over) -> dict:
    row = {"idx": idx, "dataset": "DREAM/x", "video_file": "<placeholder>",
           "text": {"prompt": "<video>\nDescribe.", "response": "A man walks."},
           "extra_info": {"events": ["A man walks."], "n_subjects": 1, "n_shots": 1,
                          "n_events": 1}}  # fmt: skip
    row.update(over)
    return row


def fail(capsys, srv, bench: str, data, *extra: str, out=None) -> str:
    code = run_eval(srv, bench, "--data", str(data), *extra, "--out", str(out or f"{data}.out"))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert srv.requests == []
    return err


def test_jsonl_bad_line_and_missing_field(fault_server, tmp_path, capsys):
    judge = ["--judge-model", "j", "--judge-api-base", fault_server.base_url]
    path = tmp_path / "DREAM-1k.jsonl"
    path.write_text(json.dumps(dream(1)) + "\n{not json\n")
    err = fail(capsys, fault_server, "dream1k", path, *judge)
    assert f"{path}:2: not valid JSON" in err
    write_jsonl(path, [dream(1), dream(2), dream(3, text={"prompt": "x"})])
    assert f"{path}:3: text: missing field 'response'" in fail(
        capsys, fault_server, "dream1k", path, *judge
    )
    write_jsonl(path, [dream(1), dream(2, extra_info={"events": "one event"})])
    assert f"{path}:2: field 'extra_info.events' should be a string list" in fail(
        capsys, fault_server, "dream1k", path, *judge
    )
    write_jsonl(path, [dream(1), dream(1)])
    assert f"{path}:2: duplicate idx '1'" in fail(capsys, fault_server, "dream1k", path, *judge)


def test_json_files_name_item_and_field(fault_server, tmp_path, capsys, eval_videos):
    folder = tmp_path / "json"
    folder.mkdir()
    task = folder / "action_sequence.json"
    task.write_text(json.dumps([
        {"video": "v1.mp4", "question": "Q?", "candidates": ["a", "b"], "answer": "a"},
        {"video": "v2.mp4", "question": "Q?", "answer": "a"},
    ]))  # fmt: skip
    videos = ["--videos", str(eval_videos)]
    assert f"{task}: item 1: missing field 'candidates'" in fail(
        capsys, fault_server, "mvbench", folder, *videos
    )
    task.write_text(
        json.dumps([{"video": "v", "question": "Q", "candidates": ["a"], "answer": "z"}])
    )
    assert "item 0: field 'answer' is not one of 'candidates'" in fail(
        capsys, fault_server, "mvbench", folder, *videos
    )
    q = tmp_path / "questions"
    q.mkdir()
    (q / "yes_no.json").write_text('{\n  "v1": {\n    "speed": [\n      {"question": "Q?",}\n')
    assert f"{q / 'yes_no.json'}:4: not valid JSON" in fail(
        capsys, fault_server, "tempcompass", q, *videos
    )
    (q / "yes_no.json").write_text(json.dumps({"v1": {"speed": [{"question": "Fast?"}]}}))
    assert "'v1'/speed[0]: missing field 'answer'" in fail(
        capsys, fault_server, "tempcompass", q, *videos
    )


def test_videomme_and_vdc_files(fault_server, tmp_path, capsys, eval_videos):
    rows = tmp_path / "videomme.jsonl"
    write_jsonl(rows, [{"question_id": "1", "videoID": "v1", "question": "Q?",
                        "options": "A. x B. y", "answer": "A"}])  # fmt: skip
    assert f"{rows}:1: field 'options' should be list, not str" in fail(
        capsys, fault_server, "videomme", rows, "--videos", str(eval_videos)
    )
    bad = tmp_path / "colour.jsonl"
    write_jsonl(bad, [{"v1": [{"question": "Q?", "answer": "a"}]}])
    judge = ["--judge-model", "j", "--judge-api-base", fault_server.base_url]
    assert "unknown VDC dimension file 'colour'" in fail(capsys, fault_server, "vdc", bad, *judge)
    cam = tmp_path / "camera.jsonl"
    write_jsonl(cam, [{"v1": [{"question": "Q?"}]}])
    assert f"{cam}:1: 'v1'[0]: missing field 'answer'" in fail(
        capsys, fault_server, "vdc", cam, *judge
    )


@pytest.mark.parametrize(
    ("bench", "extra", "message"),
    [
        ("dream1k", ["--captions", "caps.jsonl"], "dream1k needs a judge"),
        ("mvbench", [], "--input grid needs the benchmark's videos"),
        ("tempcompass", ["--input", "caption"], "caption input needs captions"),
    ],
)
def test_missing_options(fault_server, tmp_path, capsys, bench, extra, message):
    data = {"dream1k": tmp_path / "d.jsonl", "mvbench": tmp_path / "m.json",
            "tempcompass": tmp_path / "yes_no.json"}[bench]  # fmt: skip
    content = {
        "dream1k": json.dumps(dream(1)) + "\n",
        "mvbench": json.dumps(
            [{"video": "v", "question": "Q", "candidates": ["a"], "answer": "a"}]
        ),
        "tempcompass": json.dumps({"v1": {"speed": [{"question": "Fast?", "answer": "yes"}]}}),
    }[bench]
    data.write_text(content)
    (tmp_path / "caps.jsonl").write_text("")
    args = [a.replace("caps.jsonl", str(tmp_path / "caps.jsonl")) for a in extra]
    assert message in fail(capsys, fault_server, bench, data, *args)


def test_missing_data_path(fault_server, tmp_path, capsys):
    err = fail(capsys, fault_server, "videomme", tmp_path / "nope.parquet", "--videos",
               str(tmp_path))  # fmt: skip
    assert "nope.parquet: no such Video-MME file" in err


def test_hub_dataset_id_offline_not_cached(fault_server, tmp_path, capsys, monkeypatch):
    from support.fake_hub import use_fake_hub

    use_fake_hub(monkeypatch, "http://127.0.0.1:9", tmp_path / "hf", offline=True)
    err = fail(capsys, fault_server, "mvbench", "hf:OpenGVLab/MVBench/json", "--videos",
               str(tmp_path), out=tmp_path / "out")  # fmt: skip
    assert "--data hf:OpenGVLab/MVBench/json: cannot get the dataset files" in err


def test_duplicate_items(fault_server, tmp_path, capsys):
    cam = tmp_path / "camera.jsonl"
    write_jsonl(cam, [{"v1": [{"question": "Q?", "answer": "a"}]},
                      {"v1": [{"question": "Q2?", "answer": "b"}]}])  # fmt: skip
    judge = ["--judge-model", "j", "--judge-api-base", fault_server.base_url]
    err = fail(capsys, fault_server, "vdc", cam, *judge)
    assert f"{cam}:2: item 'camera/v1' appears twice (first at {cam}:1)" in err
