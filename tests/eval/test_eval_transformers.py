"""The model under test in-process (``--backend transformers``): the tiny LLaVA answers
TempCompass from the grid; a rerun of the finished eval runs nothing."""

from __future__ import annotations

import json

import pytest

from diffcap.config import RunConfig
from diffcap.eval import EvalSpec, run_eval
from support.servers import tiny_llava_server  # noqa: F401
from support.tiny_llava import tiny_llava_dir  # noqa: F401


def test_tiny_llava_in_process(tiny_llava_dir, eval_videos, tmp_path):  # noqa: F811
    q = tmp_path / "yes_no.json"
    q.write_text(json.dumps({
        "v1": {"speed": [{"question": "Is the video in slow motion?", "answer": "no"}]},
        "v2": {"order": [{"question": "Does the square appear first?", "answer": "yes"}]},
    }))  # fmt: skip
    cfg = RunConfig.model_validate(
        {
            "model": {
                "backend": "transformers",
                "model": str(tiny_llava_dir),
                "device": "cpu",
                "max_tokens": 8,
            }
        }
    )
    spec = EvalSpec("tempcompass", q, tmp_path / "out", videos=eval_videos, input_mode="grid")
    first = run_eval(spec, cfg, progress=False)
    assert (first.counts["scored"], first.requests, first.replayed) == (2, 2, 0)
    preds = [json.loads(x) for x in (tmp_path / "out" / "predictions.jsonl").read_text().split("\n")
             if x]  # fmt: skip
    assert all(isinstance(p["raw"], str) and p["model"] == str(tiny_llava_dir) for p in preds)
    # The tiny model answers noise: the rules read it or not, never a crash; counts add up.
    assert first.overall["count"] == 2 and 0 <= first.overall["correct"] <= 2
    again = run_eval(spec, cfg, progress=False)
    assert (again.requests, again.counts["scored"]) == (0, 2)


def test_in_process_mvbench_prefills_the_reply(tiny_llava_dir, eval_videos, tmp_path):  # noqa: F811
    """--prefill auto with an in-process model: "Best option:(" starts the assistant turn
    (not the question), and the eval records it."""
    data = tmp_path / "action_antonym.json"
    data.write_text(json.dumps([
        {"video": "v1.mp4", "question": "What happens?", "candidates": ["a", "b"], "answer": "a"},
    ]))  # fmt: skip
    cfg = RunConfig.model_validate(
        {"model": {"backend": "transformers", "model": str(tiny_llava_dir), "device": "cpu",
                   "max_tokens": 4}}
    )  # fmt: skip
    spec = EvalSpec("mvbench", data, tmp_path / "out", videos=eval_videos, input_mode="grid")
    report = run_eval(spec, cfg, progress=False)
    assert report.exit_code == 0 and report.counts["scored"] == 1
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert scores["prefill"] == "assistant"


@pytest.mark.slow  # ~20 s to start the server on 2 cores
def test_against_a_real_transformers_serve(tiny_llava_server, eval_videos, tmp_path):  # noqa: F811
    """The same eval over HTTP to a real OpenAI-compatible server (``transformers serve``
    with the tiny LLaVA): the grid goes as a base64 image, the answer comes back scored."""
    data = tmp_path / "action_antonym.json"
    data.write_text(json.dumps([
        {"video": "v1.mp4", "question": "What happens?", "candidates": ["a", "b"], "answer": "a"},
        {"video": "v2.mp4", "question": "What next?", "candidates": ["c", "d"], "answer": "d"},
    ]))  # fmt: skip
    cfg = RunConfig.model_validate(
        {
            "model": {
                "backend": "openai",
                "model": tiny_llava_server.model,
                "max_retries": 0,
                "api_base": tiny_llava_server.base_url,
                "api_key": "none",
            }
        }
    )
    spec = EvalSpec("mvbench", data, tmp_path / "out", videos=eval_videos, input_mode="grid")
    report = run_eval(spec, cfg, progress=False)
    assert report.exit_code == 0 and report.counts["scored"] == 2 and report.requests == 2
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert scores["overall"]["count"] == 2 and scores["model"] == tiny_llava_server.model


def test_a_model_retrained_into_the_same_folder_is_another_eval(
    tiny_llava_dir,  # noqa: F811
    eval_videos,
    tmp_path,
):
    """Done answers of the old weights must not stand for the new ones: the rerun is
    refused with what changed (issue 22, item 2)."""
    import shutil

    from diffcap.errors import ConfigError
    from support.tiny_llava import retrain_in_place

    model = tmp_path / "model"
    shutil.copytree(tiny_llava_dir, model)
    q = tmp_path / "yes_no.json"
    q.write_text(json.dumps({"v1": {"speed": [{"question": "Slow?", "answer": "no"}]}}))
    cfg = RunConfig.model_validate(
        {
            "model": {
                "backend": "transformers",
                "model": str(model),
                "device": "cpu",
                "max_tokens": 4,
            }
        }
    )
    spec = EvalSpec("tempcompass", q, tmp_path / "out", videos=eval_videos, input_mode="grid")
    assert run_eval(spec, cfg, progress=False).requests == 1
    assert run_eval(spec, cfg, progress=False).requests == 0  # same weights: nothing to do
    retrain_in_place(model)
    with pytest.raises(ConfigError, match="model_identity"):
        run_eval(spec, cfg, progress=False)
