"""The CLIP embedder on a tiny CLIP vision tower built from a config (no download)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from diffcap.embed import get_image_embedder
from diffcap.errors import ModelUnavailable

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny-clip")
    torch.manual_seed(0)
    cfg = transformers.CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
    )
    transformers.CLIPVisionModel(cfg).save_pretrained(path)
    proc_cls = getattr(transformers, "CLIPImageProcessorPil", transformers.CLIPImageProcessor)
    proc_cls(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        path
    )
    return path


def _images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (60 + 10 * i, 90, 3), dtype=np.uint8) for i in range(5)]


def test_class_token_before_final_layer_norm(tiny_clip: Path) -> None:
    emb = get_image_embedder(f"clip:{tiny_clip}", device="cpu", batch_size=2)
    assert emb.model_id == f"clip:{tiny_clip}" and emb.default_threshold == 0.93
    vecs = emb.embed_images(_images())  # 5 images in batches of 2
    assert vecs.shape == (5, 32) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)

    # reference computed independently: last hidden layer's CLS, RGB, same processor
    proc_cls = getattr(transformers, "CLIPImageProcessorPil", transformers.CLIPImageProcessor)
    proc = proc_cls.from_pretrained(tiny_clip)
    model = transformers.CLIPVisionModel.from_pretrained(tiny_clip).eval()
    with torch.no_grad():
        out = model(**proc(images=_images(), return_tensors="pt"), output_hidden_states=True)
    ref = out.hidden_states[-1][:, 0].numpy()
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    np.testing.assert_allclose(vecs, ref, atol=1e-5)
    pooled = out.pooler_output.numpy()  # after post_layernorm: must NOT be what we return
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    assert np.abs(vecs - pooled).max() > 1e-3


def test_pickles_as_settings(tiny_clip: Path) -> None:
    import pickle

    emb = get_image_embedder(f"clip:{tiny_clip}", device="cpu")
    again = pickle.loads(pickle.dumps(emb))
    img = _images()[:2]
    np.testing.assert_allclose(again.embed_images(img), emb.embed_images(img), atol=1e-6)


def test_rgb_order_matters(tiny_clip: Path) -> None:
    emb = get_image_embedder(f"clip:{tiny_clip}", device="cpu")
    img = _images()[0]
    a, b = emb.embed_images([img, np.ascontiguousarray(img[..., ::-1])])
    assert float(a @ b) < 0.9999  # BGR input gives a different feature


def test_missing_weights_say_how_to_pass_a_local_dir(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable) as info:
        get_image_embedder(f"clip:{tmp_path / 'no-such-model'}")
    assert "--embedder clip:" in str(info.value)
    with pytest.raises(ModelUnavailable, match="hub"):
        get_image_embedder("clip")  # the default hub id; HF_HUB_OFFLINE=1 in tests


def test_keyframes_cli_with_clip_embedder(tiny_clip: Path, tmp_path: Path) -> None:
    from diffcap.cli.main import main
    from diffcap.video.synth import Scene, write_video

    video = write_video(tmp_path / "v.mp4", [Scene(2.0), Scene(2.0)], size=(64, 36), fps=10)
    args = [
        "-q",
        "keyframes",
        str(video.path),
        "--out",
        str(tmp_path / "kf"),
        "--embedder",
        f"clip:{tiny_clip}",
        "--interval",
        "1",
        "--kf-batch-size",
        "2",
    ]
    try:
        main(args)
    except SystemExit as exc:  # main() exits with the command's status
        assert not exc.code
    data = json.loads((tmp_path / "kf" / "keyframes" / "v" / "keyframes.json").read_text())
    assert data["embedder"] == f"clip:{tiny_clip}" and data["threshold"] == 0.93
    assert data["keyframes"][0]["time"] == 0.0
    folder = tmp_path / "kf" / "keyframes" / "v"
    assert all((folder / k["file"]).is_file() for k in data["keyframes"])
