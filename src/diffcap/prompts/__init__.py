"""Versioned prompt templates, shipped as files, in presets.

Two presets ship with diffcap: ``diffcap`` (our prompts: real timestamps, change-focused
differential captions, a grounded 200-400 word summary) and ``sharecaptioner`` (the released
ShareCaptioner-Video formats verbatim, with real timestamps, and its generation defaults:
3 beams, 2048 new tokens, in :attr:`TemplateSet.generation`).

    from diffcap.prompts import load_templates
    ts = load_templates("diffcap", overrides={"summary": "my_summary.txt"})
    ts["differential"].render(prev_index=1, prev_time=0.0, index=2, time=2.5,
                              previous="A man stands.", layout="two_images")
    ts["summary"].render(timeline=[(0.0, "A man stands."), (2.5, "He sits.")],
                         num_frames=2, duration=5.0)
    ts.provenance()  # {"first_frame": "diffcap/first_frame@1", ...}

Variables per template (callers may pass more; ``index`` counts keyframes from 1):

- first_frame: index, time, num_frames, + span
- differential: prev_index, prev_time, index, time, previous, layout ("two_images" or
  "composite"), num_frames, + span
- summary: timeline (list of (time, caption) pairs or Caption objects), num_frames, + span
- fast: num_frames, times (list of seconds), layout ("grid" or "strip"), + span
- clip_summary: timeline, num_frames, + span
- recaption: text
- short_caption: duration

"+ span" (:data:`SPAN_VARIABLES`) is what the prompt covers: ``start``/``end`` (seconds from
the start of the file, the clock keyframe times use), ``duration`` (``end - start``: a
window's length, not the file's), ``video_duration`` and ``scope`` ("video" or "clip").
Callers that pass only ``duration`` get the rest filled in (:func:`span_defaults`).
"""

from diffcap.prompts.presets import (
    PAIR_LAYOUTS,
    TEMPLATE_NAMES,
    TemplateSet,
    available_presets,
    load_template_file,
    load_templates,
)
from diffcap.prompts.render import (
    SPAN_VARIABLES,
    VARIABLES,
    Template,
    format_seconds,
    format_times,
    span_defaults,
    timeline_block,
    timeline_entries,
)

__all__ = [
    "PAIR_LAYOUTS",
    "SPAN_VARIABLES",
    "TEMPLATE_NAMES",
    "VARIABLES",
    "Template",
    "TemplateSet",
    "available_presets",
    "format_seconds",
    "format_times",
    "load_template_file",
    "load_templates",
    "span_defaults",
    "timeline_block",
    "timeline_entries",
]
