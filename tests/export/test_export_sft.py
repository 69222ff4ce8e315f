"""LLaMA-Factory, ms-swift and Qwen-VL fine-tune exports: the llava builder's samples (same
prompts, images, answers) in each trainer's own shape; and the `summary` task."""

from __future__ import annotations

import json

from diffcap.export import ExportOptions, export

OPTS = ExportOptions(progress=False, tasks=("fast", "slide", "recaption", "summary"))


def _llava(export_fixture, tmp_path):
    out = tmp_path / "llava" / "l.json"
    export(export_fixture.run_dir, "llava", out, OPTS)
    return json.loads(out.read_text())


def test_llamafactory_messages_images_and_dataset_info(export_fixture, tmp_path):
    want = _llava(export_fixture, tmp_path)
    out = tmp_path / "lf" / "diffcap_sft.json"
    result = export(export_fixture.run_dir, "llamafactory", out, OPTS)
    rows = json.loads(out.read_text())
    assert result.items == len(rows) == len(want)
    for row, item in zip(rows, want, strict=True):
        images = item.get("image") or []
        images = [images] if isinstance(images, str) else images
        user, assistant = row["messages"]
        assert user["role"] == "user" and assistant["role"] == "assistant"
        assert user["content"].count("<image>") == len(images) == len(row.get("images", []))
        prompt = item["conversations"][0]["value"].split("\n", len(images))[-1]
        assert user["content"] == "<image>" * len(images) + prompt
        assert assistant["content"] == item["conversations"][1]["value"]
        for p in row.get("images", []):
            assert (out.parent / p).is_file()
    info = json.loads((out.parent / "dataset_info.json").read_text())
    assert info["diffcap_sft"]["file_name"] == "diffcap_sft.json"
    assert info["diffcap_sft"]["formatting"] == "sharegpt"
    assert info["diffcap_sft"]["columns"] == {"messages": "messages", "images": "images"}
    assert "registered as 'diffcap_sft'" in result.line()


def test_swift_jsonl_and_qwenvl_pictures(export_fixture, tmp_path):
    want = _llava(export_fixture, tmp_path)
    swift = tmp_path / "swift" / "train.jsonl"
    export(export_fixture.run_dir, "swift", swift, OPTS)
    lines = [json.loads(x) for x in swift.read_text().splitlines()]
    assert len(lines) == len(want) and all("messages" in x for x in lines)
    qwen = tmp_path / "qwen" / "train.json"
    export(export_fixture.run_dir, "qwenvl", qwen, OPTS)
    rows = json.loads(qwen.read_text())
    pair = next(r for r in rows if r["task"] == "slide" and r["id"].endswith(":1"))
    user = pair["conversations"][0]
    assert user["from"] == "user" and user["value"].startswith("Picture 1: <img>")
    first = user["value"].split("<img>", 1)[1].split("</img>", 1)[0]
    assert (qwen.parent / first).is_file()
    assert pair["conversations"][1]["from"] == "assistant"


def test_summary_task_is_slide_modes_last_step(export_fixture, tmp_path):
    items = [i for i in _llava(export_fixture, tmp_path) if i["task"] == "summary"]
    rec = next(r for r in export_fixture.records if r.video_id == "alpha")
    assert len(items) == 2 and "image" not in items[0]
    human = next(i for i in items if i["video_id"] == "alpha")["conversations"][0]["value"]
    for cap in rec.differential:
        assert cap.content.replace("alpha", "") in human.replace("alpha", "")
    default = tmp_path / "default.json"
    export(export_fixture.run_dir, "llava", default, ExportOptions(progress=False))
    assert not any(i["task"] == "summary" for i in json.loads(default.read_text()))
