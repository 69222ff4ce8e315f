"""Config section ``eval``: the settings of ``diffcap eval`` besides the run config of the
model under test (one definition, defaults once).

The flags of ``diffcap eval`` are generated from these fields (:mod:`diffcap.cli.sections`);
a YAML ``eval:`` section or ``--set eval.limit=50`` sets them too. The benchmark, ``--data``
and ``--out`` name the eval and are given on the command line.

    EvalConfig.model_validate({"input_mode": "frames", "n_frames": 8})
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from diffcap.config.bounds import Section

#: What the model sees (``--input``).
InputMode = Literal["grid", "frames", "keyframes", "caption"]
#: Where an official answer prefill goes (``--prefill``).
PrefillMode = Literal["auto", "assistant", "user"]


class EvalConfig(Section):
    videos: Path | None = Field(
        None, description="Folder of the videos.", json_schema_extra={"path": "dir"}
    )
    captions: Path | None = Field(
        None,
        description="Captions to use: a diffcap run dir or records .jsonl (caption input).",
        json_schema_extra={"path": "any"},
    )
    input_mode: InputMode | None = Field(
        None,
        description="What the model sees: grid (16 frames 4x4, the paper's 8B model), frames "
        "(N uniform), keyframes (diffcap's), caption (a text model answers from the caption) "
        "[caption for dream1k/vdc, else grid].",
        json_schema_extra={"flag": "--input"},
    )
    n_frames: int = Field(
        16,
        ge=1,
        le=256,
        description="Frames for --input frames.",
        json_schema_extra={"flag": "--num-frames"},
    )
    judge_model: str | None = Field(
        None,
        description="Judge model, any OpenAI-compatible one (dream1k, vdc; tempcompass: the "
        "answers no rule reads).",
    )
    judge_api_base: str | None = Field(None, description="Judge base URL [the --api-base].")
    judge_api_key: str | None = Field(
        None,
        repr=False,
        exclude=True,
        description="Judge API key [env DIFFCAP_JUDGE_API_KEY, else OPENAI_API_KEY].",
        json_schema_extra={"envvar": "DIFFCAP_JUDGE_API_KEY"},
    )
    answer_model: str | None = Field(
        None, description="Text model answering from captions [--model]."
    )
    answer_api_base: str | None = Field(None, description="Its base URL [--api-base].")
    subtitles: Path | None = Field(
        None,
        description="videomme: the folder of <videoID>.srt subtitles (the 'w/ subs' setting).",
        json_schema_extra={"path": "dir"},
    )
    prompts: Path | None = Field(
        None,
        description="The benchmark's own prompt file diffcap does not ship (tempcompass: "
        "prompt_templates.py) [found beside --data].",
        json_schema_extra={"path": "any"},
    )
    prefill: PrefillMode = Field(
        "auto",
        description="Where an official answer prefill goes (mvbench's 'Best option:('): the "
        "start of the model's reply (assistant; OpenAI-compatible servers that continue a "
        "final assistant message, e.g. vLLM), or the end of the question (user); auto: "
        "assistant for --backend transformers, else user.",
    )
    official_quirks: bool = Field(
        False,
        description="Score exactly as the official code, quirks diffcap corrects included "
        "(see docs/eval.md).",
    )
    limit: int | None = Field(None, ge=1, description="Only the first N items.")
    seed: int = Field(0, description="Seed of VDC's caption prompt choice.")
