"""Prompt templates: presets, rendering, overrides, provenance, errors, exact released formats."""

from __future__ import annotations

from importlib import resources

import pytest

from diffcap.errors import TemplateError
from diffcap.prompts import (
    TEMPLATE_NAMES,
    Template,
    available_presets,
    format_seconds,
    format_times,
    load_templates,
    timeline_block,
)
from diffcap.timeline import Caption

DIFF_VARS = dict(
    prev_index=2,
    prev_time=4.0,
    index=3,
    time=6.5,
    previous="A dog sits on the grass.",
    layout="two_images",
    num_frames=5,
    duration=12.0,
)


def test_presets_ship_all_templates_as_package_data():
    assert {"diffcap", "sharecaptioner"} <= set(available_presets())
    files = {p.name for p in (resources.files("diffcap.prompts") / "templates").iterdir()}
    for name in TEMPLATE_NAMES:
        assert f"diffcap.{name}.txt" in files
    for preset in available_presets():
        ts = load_templates(preset)
        assert list(ts) == list(TEMPLATE_NAMES)
        for name in TEMPLATE_NAMES:
            assert ts[name].id and ts[name].version


def test_provenance_names_id_and_version():
    prov = load_templates("diffcap").provenance()
    assert prov["first_frame"] == "diffcap/first_frame@1"
    assert set(prov) == set(TEMPLATE_NAMES)
    sc = load_templates("sharecaptioner").provenance()
    assert sc["differential"] == "sharecaptioner/differential@1"
    # The release has no one-sentence prompt: the preset borrows diffcap's, and says so.
    assert sc["short_caption"] == "diffcap/short_caption@1"


def test_diffcap_differential_uses_real_times_and_asks_for_changes():
    text = load_templates()["differential"].render(**DIFF_VARS)
    assert "4.0 s" in text and "6.5 s" in text
    assert "A dog sits on the grass." in text
    for word in ("actions", "pose", "position", "camera", "scene"):
        assert word in text
    assert "Do not repeat" in text
    assert "{" not in text and "}" not in text


def test_differential_layout_note_follows_layout():
    tpl = load_templates()["differential"]
    two = tpl.render(**DIFF_VARS)
    comp = tpl.render(**{**DIFF_VARS, "layout": "composite"})
    assert "second image is keyframe 3" in two
    assert "keyframe 2 on top and keyframe 3 below" in comp
    with pytest.raises(TemplateError, match="layout='grid'"):
        tpl.render(**{**DIFF_VARS, "layout": "grid"})


def test_summary_timeline_block_from_pairs_and_captions():
    tpl = load_templates()["summary"]
    pairs = [(0.0, "A man stands by a door."), (2.5, " He opens it. ")]
    text = tpl.render(timeline=pairs, num_frames=2, duration=5.0)
    assert "[0.0 s] A man stands by a door.\n[2.5 s] He opens it.\n" in text
    assert "200 to 400 words" in text and "camera" in text
    caps = [
        Caption(idx="0", content="A man stands by a door.", time=0.0),
        Caption(idx="1", content="He opens it.", time=2.5),
    ]
    assert tpl.render(timeline=caps, num_frames=2, duration=5.0) == text


def test_sharecaptioner_strings_are_the_released_ones_with_real_times():
    ts = load_templates("sharecaptioner")
    assert ts["first_frame"].render(index=1, time=0.0) == (
        "This is the first frame of a video, describe it in detail."
    )
    assert ts["differential"].render(**DIFF_VARS) == (
        "Here are the Video frame 2 at 4.00 Second(s) and Video frame 3 at 6.50 Second(s) of a "
        "video, describe what happend between them. What happend before is: "
        "A dog sits on the grass."
    )
    summary = ts["summary"].render(timeline=[(0.0, "a"), (2.0, "b"), (7.25, "c")])
    assert summary == (
        "Summarize the following per frame descriptions:\n"
        "Video frame 1 at 0.00 Second(s) description: a\n"
        "Video frame 2 at 2.00 Second(s) description: b\n"
        "Video frame 3 at 7.25 Second(s) description: c\n"
    )
    assert ts["fast"].render(times=[0.0, 2.0], num_frames=2, layout="grid") == (
        "Here are a few key frames of a video, discribe this video in detail."
    )
    assert ts["recaption"].render(text="a cat on a sofa") == (
        "Translate this brief generation prompt into a detailed caption: a cat on a sofa"
    )
    assert ts.generation == {"num_beams": 3, "max_tokens": 2048}
    assert load_templates("diffcap").generation == {}


def test_fast_lists_real_times_and_layout():
    tpl = load_templates()["fast"]
    grid = tpl.render(times=[0.0, 2.0, 5.5], num_frames=3, layout="grid", duration=6.0)
    assert "0.0 s, 2.0 s, 5.5 s" in grid and "grid" in grid
    strip = tpl.render(times=[0.0, 2.0], num_frames=2, layout="strip", duration=6.0)
    assert "top to bottom" in strip


def test_missing_variable_is_named():
    tpl = load_templates()["differential"]
    with pytest.raises(TemplateError, match=r"\['previous'\]"):
        tpl.render(**{k: v for k, v in DIFF_VARS.items() if k != "previous"})
    with pytest.raises(TemplateError, match="duration"):
        load_templates()["summary"].render(timeline=[(0.0, "x")], num_frames=1, duration=None)


def test_override_with_header(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text(
        "---\nid: lab/summary\nversion: 7\nitem: '- {time:.2f}: {caption}'\n---\n"
        "Sum up:\n{timeline}Thanks {{braces}}\n"
    )
    ts = load_templates("diffcap", overrides={"summary": path})
    assert ts.provenance()["summary"] == "lab/summary@7"
    assert ts.provenance()["first_frame"] == "diffcap/first_frame@1"
    text = ts["summary"].render(timeline=[(1.0, "x")], num_frames=1, duration=2.0)
    assert text == "Sum up:\n- 1.00: x\nThanks {braces}"


def test_override_without_header_gets_content_version(tmp_path):
    path = tmp_path / "ff.txt"
    path.write_text("Frame at {time:.1f} s. Describe it.\n")
    ts = load_templates(overrides={"first_frame": str(path)})
    ref = ts.provenance()["first_frame"]
    assert ref.startswith("custom/ff@sha-")
    path.write_text("Frame at {time:.2f} s. Describe it.\n")
    assert load_templates(overrides={"first_frame": path}).provenance()["first_frame"] != ref
    assert ts["first_frame"].render(time=3.0, index=1) == "Frame at 3.0 s. Describe it."


def test_override_unknown_placeholder_is_named(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("At {time} see {previos}\n")
    with pytest.raises(TemplateError, match=r"previos"):
        load_templates(overrides={"differential": path})


@pytest.mark.parametrize(
    "text, match",
    [
        ("Hello {time.real}", "plain variable"),
        ("Hello {", "malformed"),
        ("---\nid: x\nversoin: 2\n---\nHi", "unknown header"),
        ("---\nid: x\nno end", "never ends"),
        ("---\nitem: '{who}'\n---\n{timeline}", "item"),
    ],
)
def test_bad_template_files(tmp_path, text, match):
    path = tmp_path / "t.txt"
    path.write_text(text)
    with pytest.raises(TemplateError, match=match):
        load_templates(overrides={"summary": path})


def test_unknown_names_and_presets(tmp_path):
    with pytest.raises(TemplateError, match="diffcap"):
        load_templates("nope")
    with pytest.raises(TemplateError, match="unknown template 'sumary'"):
        load_templates(overrides={"sumary": tmp_path / "x.txt"})
    with pytest.raises(TemplateError, match="cannot read"):
        load_templates(overrides={"summary": tmp_path / "missing.txt"})
    with pytest.raises(TemplateError, match="no template named"):
        load_templates()["other"]


def test_user_preset_file(tmp_path):
    (tmp_path / "r.txt").write_text("Expand: {text}\n")
    (tmp_path / "lab.yaml").write_text(
        "generation: {num_beams: 2}\nsystem: Be exact.\n"
        "templates: {recaption: r.txt, first_frame: r2.txt}\n"
    )
    with pytest.raises(TemplateError, match=r"r2\.txt"):
        load_templates(str(tmp_path / "lab.yaml"))
    (tmp_path / "lab.yaml").write_text(
        "generation: {num_beams: 2}\nsystem: Be exact.\ntemplates: {recaption: r.txt}\n"
    )
    # Unlisted templates fall back to <preset>.<name>.txt next to the preset file.
    for name in TEMPLATE_NAMES:
        if name != "recaption":
            (tmp_path / f"lab.{name}.txt").write_text("Describe.\n")
    ts = load_templates(str(tmp_path / "lab.yaml"))
    assert ts.system == "Be exact." and ts.generation == {"num_beams": 2}
    assert ts["recaption"].render(text="cat") == "Expand: cat"
    assert ts.provenance()["first_frame"].startswith("lab/first_frame@sha-")


def test_helpers():
    assert format_seconds(12) == "12.0 s"
    assert format_times([0, 2.25]) == "0.0 s, 2.2 s"
    assert timeline_block([(3.0, "a")]) == "[3.0 s] a\n"
    with pytest.raises(TemplateError):
        timeline_block([("x",)])
    tpl = Template.parse("Hi {text}", name="recaption", allowed={"text"})
    assert tpl.ref == f"custom/recaption@{tpl.version}" and tpl.variables == {"text"}
    assert tpl.render(text="you", unused=1) == "Hi you"


def test_summary_names_the_clip_when_windowed():
    tpl = load_templates()["summary"]
    pairs = [(8.0, "A man stands."), (12.0, "He sits.")]
    clip = tpl.render(timeline=pairs, num_frames=2, start=8.0, end=16.0, video_duration=24.0)
    assert "keyframes of the clip from 8.0 s to 16.0 s of a video, 8.0 s long." in clip
    assert "[8.0 s] A man stands.\n[12.0 s] He sits.\n" in clip  # one clock for all times
    assert "24.0" not in clip and "caption of this whole clip" in clip
    whole = tpl.render(timeline=pairs, num_frames=2, start=0.0, end=24.0, video_duration=24.0)
    assert "keyframes of one video that lasts 24.0 s." in whole
    assert "caption of the whole video" in whole
    assert load_templates().provenance()["summary"] == "diffcap/summary@2"


def test_old_callers_that_pass_only_duration_still_render():
    # Callers from before start/end/scope existed: duration is the whole video's length.
    ts = load_templates()
    summary = ts["summary"].render(timeline=[(0.0, "x")], num_frames=1, duration=5.0)
    assert "one video that lasts 5.0 s." in summary
    fast = ts["fast"].render(times=[0.0, 2.0], num_frames=2, layout="grid", duration=6.0)
    assert "taken at 0.0 s, 2.0 s. Describe" in fast
    fast_clip = ts["fast"].render(
        times=[2.0, 4.0], num_frames=2, layout="grid", start=2.0, end=5.0, video_duration=6.0
    )
    assert "taken at 2.0 s, 4.0 s (the clip from 2.0 s to 5.0 s of the video)." in fast_clip


def test_span_defaults():
    from diffcap.prompts.render import span_defaults

    full = span_defaults({"start": 0.0, "end": 24.0, "video_duration": 24.0})
    assert full["duration"] == 24.0 and full["scope"] == "video"
    clip = span_defaults({"start": 8.0, "end": 16.0, "video_duration": 24.0})
    assert clip["duration"] == 8.0 and clip["scope"] == "clip"
    old = span_defaults({"duration": 12.0})
    assert (old["start"], old["end"], old["video_duration"], old["scope"]) == (
        0.0,
        12.0,
        12.0,
        "video",
    )
    assert span_defaults({"text": "x"}) == {"text": "x"}  # no span: nothing added
    # A user template may use the new variables.
    tpl = Template.parse(
        "{scope} {start:.0f}-{end:.0f} of {video_duration:.0f}", name="summary", allowed=None
    )
    assert tpl.render(start=8.0, end=16.0, video_duration=24.0) == "clip 8-16 of 24"


def test_preset_pair_layout():
    assert load_templates("sharecaptioner").pair_layout == "composite"
    assert load_templates("diffcap").pair_layout is None


@pytest.mark.parametrize(("value", "expected"), [("two_images", "two_images"), ("auto", None)])
def test_user_preset_pair_layout(tmp_path, value, expected):
    (tmp_path / "p.yaml").write_text(f"pair_layout: {value}\n")
    for name in TEMPLATE_NAMES:
        (tmp_path / f"p.{name}.txt").write_text("Describe.\n")
    assert load_templates(str(tmp_path / "p.yaml")).pair_layout == expected
    (tmp_path / "p.yaml").write_text("pair_layout: grid\n")
    with pytest.raises(TemplateError, match="pair_layout 'grid'"):
        load_templates(str(tmp_path / "p.yaml"))
