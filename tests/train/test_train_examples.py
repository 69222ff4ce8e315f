"""Training examples are the captioner's own requests: same prompt text, same image bytes as
the teacher received, and the same tokens and pixels the transformers backend feeds the model
at inference (one prompt builder for both). Every data source gives the same examples."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from diffcap.errors import ConfigError
from diffcap.export import ExportOptions, export
from diffcap.train.collate import SFTCollator
from diffcap.train.examples import DataOptions, TrainExample, load_examples, split_examples
from support.cli import diffcap


def _image_bytes(received) -> list[bytes]:
    out = []
    for msg in received.body["messages"]:
        for part in msg["content"] if isinstance(msg["content"], list) else []:
            if part.get("type") == "image_url":
                out.append(base64.b64decode(part["image_url"]["url"].split(",", 1)[1]))
    return out


@pytest.fixture(scope="module")
def run_examples(teacher, tmp_path_factory):
    examples, report = load_examples(
        [str(teacher.run_dir)], DataOptions(progress=False), tmp_path_factory.mktemp("data")
    )
    return examples, report


def test_examples_are_the_requests_the_teacher_received(teacher, run_examples):
    examples, report = run_examples
    assert dict(report.per_task) == {"fast": 3, "slide": 6, "summary": 3}
    by_prompt = {}
    for r in teacher.requests:
        by_prompt.setdefault(r.prompt, []).append(_image_bytes(r))
    matched = 0
    for ex in examples:
        if ex.task == "fast":  # fast mode was not run by the teacher (slide mode was)
            continue
        assert ex.prompt in by_prompt, f"{ex.id}: no request had this prompt"
        sent = [Path(p).read_bytes() for p in ex.images]
        assert sent in by_prompt[ex.prompt], f"{ex.id}: images differ from what was sent"
        matched += 1
    assert matched == 9
    # The answers are the teacher's captions.
    assert {e.answer for e in examples if e.task == "slide"} == {
        "A red ball on green grass.",
        "The ball rolls to the left.",
    }


def test_training_batch_equals_the_inference_input(run_examples, tiny_llava_dir):
    """The collator's prompt tokens and pixels == what TransformersBackend passes to
    generate() for the same request."""
    import torch

    from diffcap.config import ModelConfig
    from diffcap.models.transformers_backend import TransformersBackend

    examples, _ = run_examples
    backend = TransformersBackend(ModelConfig(backend="transformers", model=str(tiny_llava_dir)))
    model, processor, _ = backend.load()
    seen = {}
    original = model.generate

    def spy(**kwargs):
        seen.update(kwargs)
        return original(**kwargs)

    model.generate = spy
    collate = SFTCollator(processor)
    # A two-image pair, a text-only summary, a one-image grid.
    picks = [
        next(e for e in examples if e.task == "slide" and len(e.images) == 2),
        next(e for e in examples if e.task == "summary"),
        next(e for e in examples if e.task == "fast"),
    ]
    for ex in picks:
        backend.generate_batch_sync([ex.request(model=str(tiny_llava_dir))])
        batch = collate([ex.to_row()])
        n = int(seen["attention_mask"].sum())
        prompt_ids = seen["input_ids"][0, -n:]
        assert torch.equal(batch["input_ids"][0, :n], prompt_ids), ex.task
        assert (batch["labels"][0, :n] == -100).all()  # no loss on the prompt
        answer = processor.tokenizer.decode(batch["input_ids"][0, n:], skip_special_tokens=True)
        assert answer == ex.answer
        if ex.images:
            assert torch.equal(batch["pixel_values"], seen["pixel_values"])
        else:
            assert "pixel_values" not in batch and "pixel_values" not in seen
        seen.clear()


def test_exports_and_sharegpt4video_give_the_same_examples(teacher, run_examples, tmp_path):
    examples, _ = run_examples

    def key(e: TrainExample):
        return (e.task, e.prompt, e.answer, tuple(open(p, "rb").read() for p in e.images))

    want = sorted(key(e) for e in examples)
    for fmt, name in (("llava", "l.json"), ("llamafactory", "lf.json"), ("swift", "s.jsonl")):
        out = tmp_path / fmt / name
        rc = diffcap(
            "export",
            str(teacher.run_dir),
            "--format",
            fmt,
            "--out",
            str(out),
            "--pair-layout",
            "two_images",
            "--tasks",
            "fast,slide,summary",
        )  # fmt: skip (the run's config.yaml supplies its prompt templates)
        assert rc == 0
        got, _ = load_examples([out], DataOptions(progress=False), tmp_path / f"w-{fmt}")
        assert sorted(key(e) for e in got) == want, fmt
    sg = tmp_path / "sg4v" / "sg.jsonl"
    export(teacher.run_dir, "sharegpt4video", sg, ExportOptions(progress=False))
    templates = {p.stem: str(p) for p in (teacher.run_dir.parent / "templates").glob("*.txt")}
    data = DataOptions(tasks=("slide", "summary"), progress=False, templates=templates)
    got, _ = load_examples([sg], data, tmp_path / "w-sg")
    assert sorted(key(e) for e in got) == sorted(key(e) for e in examples if e.task != "fast")


def test_clip_task_from_a_clips_file(teacher, tmp_path):
    clips = tmp_path / "clips.jsonl"
    clips.write_text(json.dumps({"video_id": "clip1", "start": 0.0, "end": 1.5,
                                 "caption": "A ball on grass."}) + "\n")  # fmt: skip
    data = DataOptions(tasks=("clip",), progress=False, clip_captions=clips)
    got, report = load_examples([teacher.run_dir], data, tmp_path / "w")
    assert dict(report.per_task) == {"clip": 1}
    (ex,) = got
    assert ex.video_id == "clip1" and ex.answer == "A ball on grass." and ex.images == ()
    assert "A red ball on green grass." in ex.prompt  # the captions inside the clip


def test_sharegpt4video_rows_without_keyframes_give_text_tasks(tmp_path):
    row = {
        "video_id": "v1",
        "video_path": "v1.mp4",
        "captions": [{"idx": "0", "content": "A cat."}, {"idx": "1", "content": "It jumps."},
                     {"idx": "-1", "content": "A cat jumps."}],
        "timestamps": [0.0, 2.0, None],
    }  # fmt: skip
    path = tmp_path / "sg.jsonl"
    path.write_text(json.dumps(row) + "\n")
    got, report = load_examples([path], DataOptions(progress=False), tmp_path / "w")
    assert [(e.task, e.answer) for e in got] == [("summary", "A cat jumps.")]
    assert "[0.0 s] A cat." in got[0].prompt and "[2.0 s] It jumps." in got[0].prompt
    assert any("without keyframe images" in n for n in report.notes)


def test_bad_data_fails_with_one_clear_line(teacher, tmp_path):
    with pytest.raises(ConfigError, match="unknown task"):
        load_examples([teacher.run_dir], DataOptions(tasks=("nope",)), tmp_path / "a")
    with pytest.raises(ConfigError, match="no training examples"):
        load_examples([teacher.run_dir], DataOptions(tasks=("recaption",), progress=False),
                      tmp_path / "b")  # fmt: skip
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [], "images": []}\n{not json\n')
    with pytest.raises(ConfigError, match=r"bad\.jsonl:2: invalid JSON"):
        load_examples([bad], DataOptions(), tmp_path / "c")
    with pytest.raises(ConfigError, match="no such run directory or data file"):
        load_examples([tmp_path / "missing.json"], DataOptions(), tmp_path / "d")
    odd = tmp_path / "odd.json"
    odd.write_text('[{"text": "hello"}]')
    with pytest.raises(ConfigError, match="not training data"):
        load_examples([odd], DataOptions(), tmp_path / "e")


def test_split_holds_out_whole_videos(run_examples):
    examples, _ = run_examples
    train, held = split_examples(examples, 0.34, seed=0)
    assert held and train
    assert not {e.video_id for e in train} & {e.video_id for e in held}
    assert len(train) + len(held) == len(examples)
    assert split_examples(examples, 0.34, seed=0) == (train, held)  # seeded: stable
    assert split_examples(examples, 0.0, seed=0) == (list(examples), [])


def test_composite_pairs_match_inference_byte_for_byte(tmp_path):
    """The sharecaptioner preset shows a frame pair as one composite: the training image is
    the very JPEG the teacher received."""
    from support.fault_server import FaultServer
    from support.teacher import teacher_reply, teacher_run, write_teacher_videos

    videos = write_teacher_videos(tmp_path / "videos", n=1)
    with FaultServer(reply=teacher_reply) as srv:
        run = teacher_run(videos, tmp_path / "run", srv, "--prompt-preset", "sharecaptioner")
        received = list(srv.requests)
    got, report = load_examples([run], DataOptions(tasks=("slide",), progress=False),
                                tmp_path / "w")  # fmt: skip
    assert report.prompts[0].startswith("--prompt-preset sharecaptioner")
    pair = next(e for e in got if e.id.endswith(":1"))
    assert len(pair.images) == 1  # one composite, as the preset's pair_layout says
    sent = [_image_bytes(r) for r in received if r.prompt == pair.prompt]
    assert sent == [[Path(pair.images[0]).read_bytes()]]
