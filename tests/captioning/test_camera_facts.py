"""Measured camera motion as a stated fact in the differential and summary prompts."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from test_captioning_logic import TIMES, RecordingBackend, make_kset

from diffcap.captioning import caption_keyframes
from diffcap.captioning.camera_facts import camera_fact, camera_summary
from diffcap.config import CaptionConfig, ModelConfig, SummaryConfig
from diffcap.export.base import ExportOptions
from diffcap.export.llava import ImageWriter, slide_items, summary_items
from diffcap.prompts import load_templates
from diffcap.timeline import CameraMotion, Keyframe

PAN = CameraMotion("pan_left", "slow", pan=-0.05, samples=8)
STATIC = CameraMotion("static", None, samples=8)


def with_camera(kset):
    """The keyframes carry: static to 2.5 s, then a slow pan left twice, the last unknown."""
    cams = [None, STATIC, PAN, None]
    kset.keyframes = [replace(k, camera=c) for k, c in zip(kset.keyframes, cams, strict=True)]
    return kset


def caption(kset, preset: str, facts: bool = True):
    backend = RecordingBackend()
    record = asyncio.run(
        caption_keyframes(
            kset,
            backend,
            CaptionConfig(prompt_preset=preset, camera_facts=facts, pair_layout="two_images"),
            ModelConfig(),
            load_templates(preset),
            SummaryConfig(),
        )
    )
    return record, [r.prompt for r in backend.requests]


def test_fact_sentences() -> None:
    a, b = Keyframe(0, 12.0, 0), Keyframe(1, 14.04, 1, camera=PAN)
    assert camera_fact(a, b) == (
        " Measured from the video: between 12.0 s and 14.0 s the camera pans left, slowly."
    )
    assert camera_fact(b, a) == ""  # not measured: nothing said
    kfs = [
        Keyframe(i, t, i, camera=c)
        for i, (t, c) in enumerate(zip(TIMES, [None, STATIC, PAN, PAN], strict=True))
    ]
    assert camera_summary(kfs).splitlines()[2:] == [
        "[0.0 s - 2.5 s] the camera is static",
        "[2.5 s - 7.9 s] the camera pans left, slowly",  # one line for a run of intervals
    ]
    assert camera_summary(kfs[:1]) == ""


def test_differential_and_summary_prompts_state_the_facts(tmp_path) -> None:
    record, prompts = caption(with_camera(make_kset(tmp_path)), "diffcap")
    first, diffs, summary = prompts[0], prompts[1:4], prompts[4]
    assert "Measured" not in first
    assert "between 0.0 s and 2.5 s the camera is static." in diffs[0]
    assert "between 2.5 s and 4.0 s the camera pans left, slowly." in diffs[1]
    assert "Measured" not in diffs[2]  # the last interval was not measured
    assert "[2.5 s - 4.0 s] the camera pans left, slowly\n" in summary
    assert record.provenance["camera_facts"] is True
    assert record.to_json()["keyframes"][2]["camera"]["label"] == "pan_left"


def test_facts_off_renders_the_prompts_as_without_camera(tmp_path) -> None:
    _, plain = caption(make_kset(tmp_path / "a"), "diffcap")
    record, off = caption(with_camera(make_kset(tmp_path / "b")), "diffcap", facts=False)
    assert off == plain
    assert "camera_facts" not in record.provenance
    # the sharecaptioner preset keeps its released format whatever the keyframes carry
    _, sc_plain = caption(make_kset(tmp_path / "c"), "sharecaptioner")
    sc_record, sc = caption(with_camera(make_kset(tmp_path / "d")), "sharecaptioner")
    assert sc == sc_plain and "camera_facts" not in sc_record.provenance


def test_llava_export_renders_the_training_prompts_as_inference_did(tmp_path) -> None:
    record, prompts = caption(with_camera(make_kset(tmp_path)), "diffcap")
    templates = load_templates("diffcap")
    opts = ExportOptions(pair_layout="two_images")
    writer = ImageWriter(tmp_path / "images", tmp_path, opts)
    slide = [item["conversations"][0]["value"] for item in slide_items(record, templates, writer)]
    assert slide[1:] == ["<image>\n<image>\n" + p for p in prompts[1:4]]
    exported = [item["conversations"][0]["value"] for item in summary_items(record, templates)]
    assert exported == [prompts[-1]]
