"""LLaVA conversation exports (four tasks) and the ShareGPT4Video-8B grid."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffcap.export import ExportOptions, export
from diffcap.export.grid import GRID_PRE_PROMPT, grid_times
from diffcap.prompts import load_templates
from diffcap.video import open_video


def _items(path: Path) -> list[dict]:
    return json.loads(path.read_text())


def test_llava_all_tasks(export_fixture, tmp_path):
    out = tmp_path / "llava.json"
    res = export(export_fixture.records_file, "llava", out, ExportOptions(progress=False))
    items = _items(out)
    tasks = [i["task"] for i in items]
    # alpha: fast 1 + slide 4 + clip 1 + recaption 1; beta (fast record): fast 1
    assert tasks.count("fast") == 2 and tasks.count("slide") == 4
    assert tasks.count("clip") == 1 and tasks.count("recaption") == 1
    assert res.items == len(items) == 8 and res.extra["tasks"]["slide"] == 4
    for item in items:
        human, gpt = item["conversations"]
        assert human["from"] == "human" and gpt["from"] == "gpt" and gpt["value"]
        images = item.get("image")
        n = 0 if images is None else (len(images) if isinstance(images, list) else 1)
        assert human["value"].count("<image>") == n
        for img in [images] if isinstance(images, str) else images or []:
            assert (out.parent / img).is_file()


def test_llava_slide_prompts_match_inference_templates(export_fixture, tmp_path):
    out = tmp_path / "llava.json"
    export(
        export_fixture.records_file, "llava", out, ExportOptions(progress=False, tasks=("slide",))
    )
    items = _items(out)
    ts = load_templates("diffcap")
    first, second = items[0], items[1]
    assert first["conversations"][0]["value"] == "<image>\n" + ts["first_frame"].render(
        index=1, time=0.0, num_frames=4, duration=10.0
    )
    assert first["conversations"][1]["value"] == "alpha caption 0 at 0 s"
    expected = ts["differential"].render(
        prev_index=1,
        prev_time=0.0,
        index=2,
        time=2.0,
        previous="alpha caption 0 at 0 s",
        layout="composite",
        num_frames=4,
        duration=10.0,
    )
    assert second["conversations"][0]["value"] == "<image>\n" + expected
    assert "2.0 s" in expected  # the real keyframe time is in the prompt
    # the composite: two 160x90 keyframes over a 50-px white band
    pair = Image.open(out.parent / second["image"])
    assert pair.size == (160, 90 + 50 + 90)
    band = np.asarray(pair.convert("RGB"))[95:135]
    assert band.min() >= 245


def test_llava_two_images_and_task_selection(export_fixture, tmp_path):
    out = tmp_path / "l2.json"
    export(
        export_fixture.records_file,
        "llava",
        out,
        ExportOptions(progress=False, tasks=("slide", "recaption"), pair_layout="two_images"),
    )
    items = _items(out)
    assert {i["task"] for i in items} == {"slide", "recaption"}
    pair = items[1]
    assert isinstance(pair["image"], list) and len(pair["image"]) == 2
    # keyframes go out as inference sends them: the saved JPEG byte for byte
    saved = export_fixture.root / export_fixture.records[0].keyframes[1].file
    assert (out.parent / pair["image"][1]).read_bytes() == saved.read_bytes()
    assert pair["conversations"][0]["value"].startswith("<image>\n<image>\n")
    rec = next(i for i in items if i["task"] == "recaption")
    assert "a short prompt about alpha" in rec["conversations"][0]["value"]
    assert rec["conversations"][1]["value"].startswith("alpha summary")
    assert "image" not in rec


def test_llava_clip_task_from_clips_file(export_fixture, tmp_path):
    clips = tmp_path / "clips.jsonl"
    clips.write_text(
        json.dumps(
            {
                "video_id": "alpha",
                "start": 2.0,
                "end": 6.0,
                "keyframes": [1, 3],
                "caption": "from file",
            }
        )
        + "\n"
    )
    out = tmp_path / "l3.json"
    export(
        export_fixture.records_file,
        "llava",
        out,
        ExportOptions(progress=False, tasks=("clip",), clip_captions=clips),
    )
    items = _items(out)
    answers = sorted(i["conversations"][1]["value"] for i in items)
    assert answers == ["alpha clip", "from file"]
    prompt = next(i for i in items if i["conversations"][1]["value"] == "from file")
    text = prompt["conversations"][0]["value"]
    assert "alpha caption 1" in text and "alpha caption 3" in text
    assert "alpha caption 0" not in text


def _cells(grid: np.ndarray, w: int, h: int, gap: int = 50) -> list[np.ndarray]:
    return [
        grid[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w]
        for r in range(4)
        for c in range(4)
    ]


def test_grid_4x4_with_white_bands_at_midpoints(export_fixture, tmp_path):
    out = tmp_path / "grid.json"
    res = export(export_fixture.records_file, "grid", out, ExportOptions(progress=False))
    items = _items(out)
    assert res.items == len(items) == 2 and res.images == 2
    alpha = items[0]
    assert alpha["conversations"][0]["value"].startswith("<image>\n" + GRID_PRE_PROMPT)
    assert alpha["conversations"][1]["value"].startswith("alpha summary")
    grid = np.asarray(Image.open(out.parent / alpha["image"]).convert("RGB")).astype(int)
    w, h = 160, 90
    assert grid.shape == (4 * h + 150, 4 * w + 150, 3)
    for k in range(1, 4):  # the white bands between rows and columns (inside JPEG bleed)
        for band in (
            grid[k * (h + 50) - 46 : k * (h + 50) - 4, :],
            grid[:, k * (w + 50) - 46 : k * (w + 50) - 4],
        ):
            assert band.min() >= 225 and band.mean() > 252
    # midpoints of 16 equal segments of the 10 s video
    duration = export_fixture.synth["alpha"].duration
    assert alpha["frame_times"] == pytest.approx(grid_times(duration), abs=0.041)
    with open_video(export_fixture.videos["alpha"]) as src:
        frames = [f.image for f in src.frames_at(grid_times(duration))]
    cells = _cells(grid, w, h)
    for i, cell in enumerate(cells):
        diffs = [np.abs(cell - f.astype(int)).mean() for f in frames]
        assert diffs[i] < 8  # JPEG noise only
        assert diffs[i] <= min(diffs) + 0.5  # no other sampled frame fits the cell better
    far = [np.abs(cells[0] - f.astype(int)).mean() for f in frames]
    assert max(far) > 30  # the video really changes over the 16 samples


def test_grid_is_scaled_to_1920(tmp_path):
    from diffcap.export.grid import grid_image
    from diffcap.video.synth import write_video

    video = write_video(tmp_path / "wide.mp4", size=(640, 360), fps=10).path
    img, times = grid_image(video)
    assert max(img.size) == 1920 and len(times) == 16
    assert img.size[1] == round((4 * 360 + 150) * 1920 / (4 * 640 + 150))


def test_llava_prompts_of_a_span_record_name_the_clip_window(export_fixture, tmp_path):
    """A manifest span (record key ``span``) reaches the training prompts as inference saw it."""
    lines = export_fixture.records_file.read_text().splitlines()
    rec = json.loads(lines[0])
    rec["span"] = {"start": 2.0, "end": 6.0}
    src = export_fixture.records_file.parent / "span_records.jsonl"
    src.write_text(json.dumps(rec) + "\n")
    out = tmp_path / "llava.json"
    export(src, "llava", out, ExportOptions(progress=False, tasks=("fast",)))
    (fast,) = _items(out)
    assert "the clip from 2.0 s to 6.0 s of the video" in fast["conversations"][0]["value"]
