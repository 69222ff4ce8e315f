"""Mode logic against a tiny in-test Backend (no network): what each request carries.

End-to-end behaviour over real HTTP is in test_captioning_e2e.py.
"""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from diffcap.captioning import (
    KeyframeImages,
    NoCaptionsInRange,
    caption_keyframes,
    generation_options,
    recaption,
    summarize_clip,
)
from diffcap.config import CaptionConfig, ModelConfig, SummaryConfig
from diffcap.models.base import Backend, ModelRequest, ModelResponse
from diffcap.prompts import load_templates
from diffcap.timeline import Keyframe, Usage, VideoInfo, VideoRecord


class RecordingBackend(Backend):
    name = "recording"
    supports_multi_image = True

    def __init__(self) -> None:
        self.model = "fake-vlm"
        self.requests: list[ModelRequest] = []

    async def agenerate(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        n = len(self.requests)
        return ModelResponse(
            text=f" answer {n} ",
            model=request.model,
            usage=Usage(requests=1, prompt_tokens=10 * n, completion_tokens=n),
        )


class OneImageBackend(RecordingBackend):
    name = "one-image"
    supports_multi_image = False


@dataclass
class FakeKeyframeSet:  # the KeyframeSet contract's attributes that captioning reads
    video_id: str
    video_path: str
    info: VideoInfo
    keyframes: list[Keyframe]
    json_path: Path | None
    images: Any = None


TIMES = [0.0, 2.5, 4.04, 7.9]


def make_kset(tmp_path: Path, size=(96, 64), times=TIMES, duration=9.0) -> FakeKeyframeSet:
    kdir = tmp_path / "keyframes" / "vid"  # the layout diffcap writes (exports check it)
    kdir.mkdir(parents=True)
    kfs = []
    for i, t in enumerate(times):
        img = np.full((size[1], size[0], 3), (40 * i) % 255, np.uint8)
        name = f"{i:05d}_{t:08.3f}.jpg"
        Image.fromarray(img).save(kdir / name, quality=90)
        kfs.append(Keyframe(idx=i, time=t, pts=int(t * 1000), file=name))
    (kdir / "keyframes.json").write_text("{}")
    info = VideoInfo(
        path="v.mp4",
        container="mp4",
        codec="h264",
        width=size[0],
        height=size[1],
        rotation=0,
        duration=duration,
        fps=None,
        frame_count=None,
        frame_count_exact=False,
        variable_fps=False,
        has_audio=False,
    )
    return FakeKeyframeSet("vid", "/videos/v.mp4", info, kfs, kdir / "keyframes.json")


def run_caption(
    kset,
    backend,
    *,
    mode="slide",
    layout="auto",
    preset="sharecaptioner",
    summary=True,
    model_cfg=None,
    records_dir=None,
) -> VideoRecord:
    cfg = CaptionConfig(mode=mode, pair_layout=layout, prompt_preset=preset)
    return asyncio.run(
        caption_keyframes(
            kset,
            backend,
            cfg,
            model_cfg or ModelConfig(),
            load_templates(preset),
            SummaryConfig(enabled=summary),
            records_dir=records_dir,
        )
    )


def test_slide_two_images_chain(tmp_path):
    backend = RecordingBackend()
    rec = run_caption(make_kset(tmp_path), backend, layout="two_images", records_dir=tmp_path)
    reqs = backend.requests
    assert len(reqs) == len(TIMES) + 1  # first + differentials + summary
    assert len(reqs[0].images) == 1
    for k in range(1, len(TIMES)):
        req = reqs[k]
        # the previous keyframe's ImageInput is reused, not re-encoded
        assert req.images[0] is reqs[k - 1].images[-1]
        assert f"at {TIMES[k - 1]:.2f} Second(s)" in req.prompt
        assert f"at {TIMES[k]:.2f} Second(s)" in req.prompt
        assert req.prompt.endswith(f"What happend before is: answer {k}")
    assert reqs[-1].images == ()
    for k, t in enumerate(TIMES):
        assert f"Video frame {k + 1} at {t:.2f} Second(s) description: answer {k + 1}" in (
            reqs[-1].prompt
        )
    caps = rec.to_json()["captions"]
    assert [c["idx"] for c in caps] == ["0", "1", "2", "3", "-1"]
    assert [c["time"] for c in caps[:-1]] == TIMES
    assert caps[-1] == {"idx": "-1", "start": 0.0, "end": 9.0, "content": "answer 5"}
    assert rec.usage.requests == 5 and rec.usage.prompt_tokens == 150
    assert rec.usage.completion_tokens == 15
    prov = rec.provenance
    assert prov["backend"] == "recording" and prov["model"] == "fake-vlm"
    assert prov["pair_layout"] == "two_images" and prov["prompt_preset"] == "sharecaptioner"
    assert prov["templates"]["differential"] == "sharecaptioner/differential@1"
    assert rec.keyframes[1].file == "keyframes/vid/" + make_name(1, TIMES[1])


def make_name(i: int, t: float) -> str:
    return f"{i:05d}_{t:08.3f}.jpg"


def test_saved_jpeg_within_cap_is_sent_as_is(tmp_path):
    kset = make_kset(tmp_path)
    backend = RecordingBackend()
    run_caption(kset, backend)
    saved = (kset.json_path.parent / kset.keyframes[0].file).read_bytes()
    assert backend.requests[0].images[0].data == saved


def test_oversized_keyframes_are_downscaled(tmp_path):
    backend = RecordingBackend()
    run_caption(
        make_kset(tmp_path, size=(400, 200)), backend, model_cfg=ModelConfig(image_max_side=100)
    )
    img = Image.open(io.BytesIO(backend.requests[0].images[0].data))
    assert img.size == (100, 50)


@pytest.mark.parametrize("layout", ["auto", "composite"])
def test_composite_pair_for_one_image_models(tmp_path, layout):
    backend = OneImageBackend() if layout == "auto" else RecordingBackend()
    rec = run_caption(make_kset(tmp_path), backend, layout=layout)
    for req in backend.requests[1:-1]:
        assert len(req.images) == 1
        img = np.asarray(Image.open(io.BytesIO(req.images[0].data)))
        assert img.shape[:2] == (64 + 50 + 64, 96)
        assert img[64 + 5 : 64 + 45].min() > 240  # the white band survived JPEG
    assert rec.provenance["pair_layout"] == "composite"


@pytest.mark.parametrize(
    ("preset", "layout", "images", "expected"),
    [
        ("sharecaptioner", "auto", 1, "composite"),  # the preset's released layout
        ("sharecaptioner", "two_images", 2, "two_images"),  # an explicit layout wins
        ("diffcap", "auto", 2, "two_images"),  # no preset layout: two images if possible
    ],
)
def test_auto_pair_layout_follows_the_preset(tmp_path, preset, layout, images, expected):
    backend = RecordingBackend()  # accepts several images per request
    rec = run_caption(make_kset(tmp_path), backend, layout=layout, preset=preset)
    for req in backend.requests[1:-1]:
        assert len(req.images) == images
        if images == 1:
            img = Image.open(io.BytesIO(req.images[0].data))
            assert img.size == (96, 64 + 50 + 64)  # vertical, 50-px gap
    assert rec.provenance["pair_layout"] == expected


SPAN_TIMES = [8.0, 10.0, 12.5, 15.9]


def test_span_summary_is_told_the_span_not_the_file(tmp_path):
    # A manifest row "v.mp4,8,16" of a 24 s file: keyframes keep the file's clock.
    backend = RecordingBackend()
    kset = make_kset(tmp_path, times=SPAN_TIMES, duration=24.0)
    rec = asyncio.run(
        caption_keyframes(
            kset,
            backend,
            CaptionConfig(),
            ModelConfig(),
            load_templates("diffcap"),
            SummaryConfig(),
            span=(8.0, 16.0),
        )
    )
    summary = backend.requests[-1].prompt
    assert "keyframes of the clip from 8.0 s to 16.0 s of a video, 8.0 s long." in summary
    assert "24.0" not in summary and "lasts" not in summary
    assert "[8.0 s] answer 1\n[10.0 s] answer 2" in summary  # same clock as the window
    assert "caption of this whole clip" in summary
    assert (rec.summary.start, rec.summary.end) == (8.0, 16.0)
    assert "keyframe 2 is at 10.0 s" in backend.requests[2].prompt.lower()


def test_whole_video_summary_says_its_length(tmp_path):
    backend = RecordingBackend()
    run_caption(make_kset(tmp_path, duration=9.0), backend, preset="diffcap")
    summary = backend.requests[-1].prompt
    assert "keyframes of one video that lasts 9.0 s." in summary
    assert "clip" not in summary


def test_fast_span_prompt_names_the_clip(tmp_path):
    backend = RecordingBackend()
    kset = make_kset(tmp_path, times=SPAN_TIMES, duration=24.0)
    rec = asyncio.run(
        caption_keyframes(
            kset,
            backend,
            CaptionConfig(mode="fast"),
            ModelConfig(),
            load_templates("diffcap"),
            SummaryConfig(),
            span=(8.0, 16.0),
        )
    )
    (req,) = backend.requests
    assert "15.9 s (the clip from 8.0 s to 16.0 s of the video)." in req.prompt
    assert (rec.summary.start, rec.summary.end) == (8.0, 16.0)


def test_single_keyframe_and_no_summary(tmp_path):
    backend = RecordingBackend()
    rec = run_caption(make_kset(tmp_path, times=[0.0]), backend, summary=False)
    assert len(backend.requests) == 1
    assert [c.idx for c in rec.captions] == ["0"] and rec.summary is None


def test_fast_mode_one_tiled_request(tmp_path):
    backend = RecordingBackend()
    rec = run_caption(make_kset(tmp_path), backend, mode="fast", preset="diffcap")
    assert len(backend.requests) == 1
    (req,) = backend.requests
    assert len(req.images) == 1
    grid = Image.open(io.BytesIO(req.images[0].data))
    assert grid.size[0] > 96 * 2 - 1 and grid.size[1] > 64 * 2 - 1  # a 2x2 grid
    assert "2.5 s" in req.prompt and "7.9 s" in req.prompt
    d = rec.to_json()
    assert [c["idx"] for c in d["captions"]] == ["-1"]
    assert d["mode"] == "fast" and d["fast_keyframes"] == [0, 1, 2, 3]


def test_fast_mode_subsamples(tmp_path):
    backend = RecordingBackend()
    kset = make_kset(tmp_path, times=[float(i) for i in range(10)])
    cfg = CaptionConfig(mode="fast", fast_max_frames=4, fast_layout="strip")
    rec = asyncio.run(
        caption_keyframes(
            kset, backend, cfg, ModelConfig(), load_templates("diffcap"), SummaryConfig()
        )
    )
    assert rec.extra["fast_keyframes"] == [0, 3, 6, 9]
    strip = Image.open(io.BytesIO(backend.requests[0].images[0].data))
    assert strip.size[1] > strip.size[0]


def test_generation_options_merge_preset_defaults():
    ts = load_templates("sharecaptioner")
    assert generation_options(ModelConfig(), ts)["num_beams"] == 3
    assert generation_options(ModelConfig(), ts)["max_tokens"] == 2048
    user = generation_options(ModelConfig(max_tokens=64, num_beams=1), ts)
    assert user["max_tokens"] == 64 and user["num_beams"] == 1
    plain = generation_options(ModelConfig(), load_templates("diffcap"))
    assert plain == {"max_tokens": 1024}


def test_request_options_reach_backend(tmp_path):
    backend = RecordingBackend()
    run_caption(make_kset(tmp_path), backend, model_cfg=ModelConfig(temperature=0.2))
    opts = backend.requests[0].options_dict
    assert opts == {"max_tokens": 2048, "num_beams": 3, "temperature": 0.2}


def stored_record() -> VideoRecord:
    return VideoRecord.from_json(
        json.loads(
            json.dumps(
                {
                    "video_id": "v",
                    "video_path": "v.mp4",
                    "duration": 10.0,
                    "keyframes": [
                        {"idx": i, "time": t, "file": "gone.jpg"}
                        for i, t in enumerate([0.0, 2.0, 4.0, 6.0])
                    ],
                    "captions": [
                        {"idx": str(i), "time": t, "content": f"c{i}"}
                        for i, t in enumerate([0.0, 2.0, 4.0, 6.0])
                    ]
                    + [{"idx": "-1", "start": 0.0, "end": 10.0, "content": "all"}],
                    "mode": "slide",
                }
            )
        )
    )


def test_summarize_clip_uses_captions_in_range():
    backend = RecordingBackend()
    usage = Usage()
    cap = asyncio.run(
        summarize_clip(stored_record(), 2.0, 4.5, backend, load_templates("diffcap"), usage=usage)
    )
    assert (cap.idx, cap.start, cap.end, cap.content) == ("-1", 2.0, 4.5, "answer 1")
    (req,) = backend.requests
    assert req.images == ()
    assert "[2.0 s] c1" in req.prompt and "[4.0 s] c2" in req.prompt
    assert "c0" not in req.prompt and "c3" not in req.prompt and "all" not in req.prompt
    assert usage.requests == 1


def test_summarize_clip_empty_range_is_an_error():
    with pytest.raises(NoCaptionsInRange, match=r"no caption between 2\.1 s and 3\.9 s"):
        asyncio.run(
            summarize_clip(stored_record(), 2.1, 3.9, RecordingBackend(), load_templates("diffcap"))
        )


def test_clip_summary_duration_is_the_clip_length():
    tpl_text = "---\nid: t/clip\nversion: 1\n---\n{duration:.1f}|{video_duration:.1f}|{scope}"
    ts = load_templates("diffcap")
    from diffcap.prompts import Template

    custom = Template.parse(tpl_text, name="clip_summary", allowed=None)
    templates = type(ts)(preset="t", templates={**ts.templates, "clip_summary": custom})
    backend = RecordingBackend()
    asyncio.run(summarize_clip(stored_record(), 2.0, 4.5, backend, templates))
    assert backend.requests[0].prompt == "2.5|10.0|clip"


def test_recaption_provenance_names_template_backend_model():
    from diffcap.captioning import recaption_provenance

    prov = recaption_provenance(RecordingBackend(), load_templates("sharecaptioner"))
    assert prov["template"] == "sharecaptioner/recaption@1"
    assert (prov["backend"], prov["model"]) == ("recording", "fake-vlm")
    assert prov["prompt_preset"] == "sharecaptioner" and prov["diffcap_version"]


def test_recaption_renders_template():
    backend = RecordingBackend()
    out = asyncio.run(recaption("  a cat on a sofa ", backend, load_templates("sharecaptioner")))
    assert out == "answer 1"
    assert backend.requests[0].prompt == (
        "Translate this brief generation prompt into a detailed caption: a cat on a sofa"
    )


def test_keyframe_images_read_each_file_once(tmp_path):
    kset = make_kset(tmp_path)
    images = KeyframeImages(kset.json_path.parent, kset.keyframes, max_side=1024)

    async def use() -> None:
        a = await images.input(0)
        assert await images.input(0) is a  # the same object for both requests
        await images.composite([0, 1])  # needs decoded pixels of both
        await images.input(1)
        await images.decoded(1)

    asyncio.run(use())
    assert images.reads == 2
    images.release(0)
    assert 0 not in images._raw and 0 not in images._inputs
