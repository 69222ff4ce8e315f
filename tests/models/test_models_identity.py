"""A local model's identity (issue 22, item 2): a model retrained into the same folder keeps
its name but not its identity, so the request cache never replays the old weights' answers
and the run says the model changed."""

from __future__ import annotations

import logging
import shutil

import pytest

pytest.importorskip("torch")
pytest.importorskip("safetensors")

from diffcap.config import RunConfig
from diffcap.engine.rundir import check_model_identity
from diffcap.models import ModelRequest, get_backend
from diffcap.models import identity as ident
from diffcap.models.cached import CachedBackend
from diffcap.models.identity import model_fingerprint
from diffcap.store import RunStore
from support.tiny_llava import retrain_in_place


@pytest.fixture
def model_dir(tiny_llava_dir, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(tiny_llava_dir, target)
    return target


def test_the_fingerprint_follows_the_files_not_the_name(model_dir):
    first = model_fingerprint(str(model_dir))
    assert first is not None and first == model_fingerprint(str(model_dir))  # stable
    retrain_in_place(model_dir)
    assert model_fingerprint(str(model_dir)) not in (None, first)
    assert model_fingerprint("gpt-4o-mini") is None  # a served name: the name is all there is
    assert model_fingerprint(str(model_dir / "missing")) is None


def test_large_weight_files_count_by_size_and_mtime_unread(model_dir, monkeypatch):
    monkeypatch.setattr(ident, "HASHED_MAX_BYTES", 1000)  # the weights are "large" now
    weights = model_dir / "model.safetensors"
    first = model_fingerprint(str(model_dir))
    size = weights.stat().st_size
    retrain_in_place(model_dir)  # same size, new content and time
    assert weights.stat().st_size == size
    assert model_fingerprint(str(model_dir)) != first


def test_a_retrained_model_is_asked_again_not_replayed(model_dir, tmp_path):
    store = RunStore.open(tmp_path / "run.sqlite")

    def backend() -> CachedBackend:  # a new process: a new backend over the same cache
        inner = get_backend("transformers", model=str(model_dir), max_tokens=4, device="cpu")
        return CachedBackend(inner, store)

    request = ModelRequest(model=str(model_dir), prompt="Describe the weather.")
    old = backend()
    assert not old.generate(request).cached
    assert old.generate(request).cached  # the same weights: replayed
    retrain_in_place(model_dir)
    new = backend()
    assert not new.generate(request).cached  # new weights: asked again
    assert store.spend()["requests"] == 2
    store.close()


def test_the_run_records_its_models_identity_and_warns_when_it_changes(model_dir, tmp_path, caplog):
    cfg = RunConfig.model_validate({"model": {"backend": "transformers", "model": str(model_dir)}})
    store = RunStore.open(tmp_path / "run.sqlite")
    first = check_model_identity(store, tmp_path, cfg)
    assert first == {str(model_dir): model_fingerprint(str(model_dir))}
    with caplog.at_level(logging.WARNING, logger="diffcap"):
        check_model_identity(store, tmp_path, cfg)
    assert "changed since the previous run" not in caplog.text
    retrain_in_place(model_dir)
    with caplog.at_level(logging.WARNING, logger="diffcap"):
        second = check_model_identity(store, tmp_path, cfg)
    assert second != first and store.get_meta("model_identity") == second
    assert "changed since the previous run (retrained?)" in caplog.text
    store.close()


def test_only_a_run_that_calls_a_model_records_its_identity(model_dir, tmp_path):
    from diffcap.pipeline import run_dataset
    from diffcap.video.synth import Scene, write_video

    clip = write_video(tmp_path / "clip.mp4", [Scene(1.0), Scene(1.0)], size=(64, 36), fps=5)
    model = {"backend": "transformers", "model": str(model_dir), "device": "cpu", "max_tokens": 4}
    cfg = RunConfig.model_validate({"model": model, "summary": {"enabled": False}})
    run_dir = tmp_path / "run"

    def stored() -> object:
        store = RunStore.open(run_dir / "run.sqlite")
        try:
            return store.get_meta("model_identity")
        finally:
            store.close()

    run_dataset([str(clip.path)], run_dir, cfg, command="keyframes", progress=False)
    assert stored() is None  # keyframes calls no model: nothing fingerprinted, nothing kept
    report = run_dataset([str(clip.path)], run_dir, cfg, command="caption", progress=False)
    assert report.counts.get("done") == 1 and report.requests_new > 0
    assert stored() == {str(model_dir): model_fingerprint(str(model_dir))}
