"""diffcap: dense, temporally precise video captions at scale.

    import diffcap
    with diffcap.open_video("clip.mp4") as src:
        print(src.info().duration)
    kset = diffcap.extract_keyframes("clip.mp4", diffcap.KeyframeConfig(), out_dir="kf/")
    for record in diffcap.iter_records("runs/demo"):
        print(record.video_id, record.summary.content if record.summary else None)

The public names below are imported on first use, so ``import diffcap`` stays cheap.
"""

from __future__ import annotations

import logging

from diffcap.lazyattr import lazy_attributes

__version__ = "0.1.0"

logging.getLogger("diffcap").addHandler(logging.NullHandler())

#: public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # value types, config, errors
    "Timestamp": "diffcap.timeline",
    "Frame": "diffcap.timeline",
    "VideoInfo": "diffcap.timeline",
    "Keyframe": "diffcap.timeline",
    "Caption": "diffcap.timeline",
    "Usage": "diffcap.timeline",
    "VideoRecord": "diffcap.timeline",
    "RunConfig": "diffcap.config",
    "KeyframeConfig": "diffcap.config",
    "ModelConfig": "diffcap.config",
    "CaptionConfig": "diffcap.config",
    "SummaryConfig": "diffcap.config",
    "DiffcapError": "diffcap.errors",
    # video and keyframes
    "open_video": "diffcap.video",
    "probe": "diffcap.video",
    "extract_keyframes": "diffcap.keyframes",
    "KeyframeSet": "diffcap.keyframes",
    "get_image_embedder": "diffcap.embed",
    "get_text_embedder": "diffcap.embed",
    # models, prompts, captioning
    "get_backend": "diffcap.models",
    "load_templates": "diffcap.prompts",
    "caption_keyframes": "diffcap.captioning",
    "summarize_clip": "diffcap.captioning",
    "recaption": "diffcap.captioning",
    # dataset runs
    "run_dataset": "diffcap.pipeline",
    "resolve_config": "diffcap.pipeline",
    "iter_records": "diffcap.pipeline",
    "run_status": "diffcap.pipeline",
}

__all__ = ["__version__", *_EXPORTS]


__getattr__ = lazy_attributes(__name__, _EXPORTS, globals())


def __dir__() -> list[str]:
    return sorted(__all__)
