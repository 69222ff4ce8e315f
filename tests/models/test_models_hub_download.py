"""The transformers backend loads a model by hub id: downloaded through the real
``huggingface_hub``/``transformers`` code from a loopback fake hub, then offline from the cache."""

from __future__ import annotations

import io
import json
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("torch")
pytest.importorskip("transformers")

from diffcap.config import ModelConfig
from diffcap.models import ImageInput, ModelRequest, get_backend
from diffcap.models.base import Backend
from support.fake_hub import FakeHub, use_fake_hub

REPO = "org/tiny-llava"


def caption(backend: Backend) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (255, 0, 0)).save(buf, "JPEG")
    request = ModelRequest(
        model=backend.model,
        prompt="Describe the frame.",
        images=(ImageInput(buf.getvalue()),),
        options=ModelRequest.make_options({"max_tokens": 4}),
    )
    response = backend.generate(request)
    assert response.text and response.model == REPO
    return response.text


def load_by_id() -> Backend:
    backend = get_backend("transformers", ModelConfig(backend="transformers", model=REPO))
    backend.preflight()
    return backend


def download(tiny_llava_dir: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    """Caption once with the model fetched from a fake hub (stopped on return)."""
    with FakeHub({REPO: tiny_llava_dir}) as hub:
        use_fake_hub(monkeypatch, hub.endpoint, cache)
        caption(load_by_id())
    return hub


def test_loads_by_repo_id_through_the_hub(tiny_llava_dir, tmp_path, monkeypatch):
    hub = download(tiny_llava_dir, tmp_path, monkeypatch)

    gets = [path for method, path in hub.requests if method == "GET"]
    assert "/api/models/org/tiny-llava" in gets  # the commit id of "main"
    downloaded = {path.rsplit("/", 1)[-1] for path in gets if "/resolve/" in path}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= downloaded
    snapshots = list((tmp_path / "hub" / "models--org--tiny-llava" / "snapshots").iterdir())
    assert len(snapshots) == 1  # one commit, named by the X-Repo-Commit the hub sent
    cached = snapshots[0]
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (cached / name).read_bytes() == (tiny_llava_dir / name).read_bytes()


def test_loads_from_the_cache_when_offline(tiny_llava_dir, tmp_path, monkeypatch):
    hub = download(tiny_llava_dir, tmp_path, monkeypatch)
    seen = len(hub.requests)

    use_fake_hub(monkeypatch, hub.endpoint, tmp_path, offline=True)  # the hub is stopped too
    caption(load_by_id())
    assert len(hub.requests) == seen


def test_fake_hub_answers_like_the_hub(tiny_llava_dir, tmp_path, monkeypatch):
    from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import (
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    with FakeHub({REPO: tiny_llava_dir}) as hub:
        use_fake_hub(monkeypatch, hub.endpoint, tmp_path)
        api = HfApi(endpoint=hub.endpoint)
        info = api.model_info(REPO)
        assert info.sha and {s.rfilename for s in info.siblings or []} >= {"config.json"}
        assert api.model_info(REPO, revision=info.sha).sha == info.sha
        files = api.list_repo_files(REPO)
        assert sorted(files) == sorted(p.name for p in tiny_llava_dir.iterdir() if p.is_file())
        url = hf_hub_url(REPO, "config.json", endpoint=hub.endpoint)
        meta = get_hf_file_metadata(url, endpoint=hub.endpoint)
        assert meta.commit_hash == info.sha
        assert meta.size == (tiny_llava_dir / "config.json").stat().st_size
        with pytest.raises(RemoteEntryNotFoundError):
            get_hf_file_metadata(url.replace("config.json", "nope.json"))
        with pytest.raises(RepositoryNotFoundError):
            api.model_info("org/missing")
        with pytest.raises(RevisionNotFoundError):
            api.model_info(REPO, revision="v9")
        with pytest.raises(RemoteEntryNotFoundError):
            list(api.list_repo_tree(REPO, path_in_repo="additional_chat_templates"))
        ranged = urllib.request.Request(url, headers={"Range": "bytes=2-5"})
        with urllib.request.urlopen(ranged, timeout=5) as response:
            assert response.status == 206
            assert response.read() == (tiny_llava_dir / "config.json").read_bytes()[2:6]


def test_caption_without_an_account_uses_a_local_model_from_the_hub(
    tiny_llava_dir, tmp_path, monkeypatch, capsys
):
    """The front door: no API key, no --api-base: `caption` picks the in-process backend,
    fetches the model from the hub on first use (the fake hub here, through the real
    loading code) and ends with real captions and a pointer to the viewer."""
    from diffcap.video.synth import Scene, write_video
    from support.cli import diffcap

    for var in ("OPENAI_API_KEY", "DIFFCAP_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    video = write_video(
        tmp_path / "v.mp4", [Scene(1.0), Scene(1.0, hue=0.5)], size=(64, 48), fps=10
    )
    out = tmp_path / "c.jsonl"
    with FakeHub({"org/tiny-llava": tiny_llava_dir}) as hub:
        use_fake_hub(monkeypatch, hub.endpoint, tmp_path / "hf")
        args = ["--model", "org/tiny-llava", "--max-tokens", "4", "--interval", "1"]
        assert diffcap("caption", str(video.path), "--out", str(out), *args) == 0
    printed = capsys.readouterr().out
    from diffcap.hints import command

    assert f"look at them: {command('diffcap')} view {out}" in printed
    (record,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert record["provenance"]["backend"] == "transformers"
    assert record["captions"] and all(c["content"] for c in record["captions"])


def test_offline_without_the_model_fails_in_seconds_with_the_routes(tmp_path, monkeypatch, capsys):
    import time

    from support.cli import diffcap

    for var in ("OPENAI_API_KEY", "DIFFCAP_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    with FakeHub({}) as hub:
        endpoint = hub.endpoint
    use_fake_hub(monkeypatch, endpoint, tmp_path / "hf")  # a hub that is gone: nothing listens
    started = time.monotonic()
    assert diffcap("caption", str(tmp_path / "x.mp4"), "--out", str(tmp_path / "c.jsonl")) == 3
    assert time.monotonic() - started < 10
    err = capsys.readouterr().err.strip()
    assert "cannot be reached" in err and "offline routes" in err and len(err.splitlines()) == 1
    assert "diffcap models --build-tiny" in err
