"""CLIP image features exactly as the ShareGPT4Video keyframe script used them.

The feature is the class token of the vision tower's last hidden layer *before* the final
layer norm (``CLIPVisionModel(...).last_hidden_state[:, 0]``; ``pooler_output`` would apply
``post_layernorm``), computed from RGB input prepared by the CLIPImageProcessor stored with the
same weights. The paper keeps a candidate when its cosine similarity to the last keyframe is
below 0.93 with ``openai/clip-vit-large-patch14-336``.

    from diffcap.embed.clip import ClipEmbedder
    emb = ClipEmbedder("/models/clip-vit-large-patch14-336")   # hub id or local directory
    vecs = emb.embed_images(frames)                              # (N, 1024) float32

torch and transformers are imported only when an embedder is built.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from diffcap._deps import require
from diffcap.embed.base import l2_normalize
from diffcap.errors import ModelUnavailable
from diffcap.models.hub import offline_routes

log = logging.getLogger(__name__)

#: The paper's keyframe model.
DEFAULT_CLIP = "openai/clip-vit-large-patch14-336"
#: The paper's keyframe threshold for this feature.
CLIP_THRESHOLD = 0.93
#: What to do when the CLIP weights are not here (``diffcap.models.hub.offline_routes``
#: fills in the model and the commands as they run on this machine).
CLIP_OFFLINE_ROUTES = (
    "offline routes for the keyframe embedder: download it where the hub is reachable "
    "(`{hf} download {model} --local-dir ./clip-l-336`), copy the folder here and pass "
    "`--embedder clip:./clip-l-336` (config.json, the weights and preprocessor_config.json); "
    "or use the offline default `--embedder weightless`"
)


def _load_processor(transformers: Any, source: str) -> Any:
    # transformers 5 splits CLIPImageProcessor into a torchvision backend and a PIL one;
    # the PIL one needs nothing beyond Pillow (torchvision does not import next to torch 2.13).
    cls = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    return cls.from_pretrained(source)


def _pick_device(torch: Any, device: str | None) -> str:
    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


class ClipEmbedder:
    """CLIP vision tower features (see module docstring). Build once, reuse for many videos."""

    default_threshold = CLIP_THRESHOLD

    def __init__(
        self, model: str = DEFAULT_CLIP, *, device: str | None = None, batch_size: int = 16
    ) -> None:
        torch = require("torch", purpose="the clip keyframe embedder")
        transformers = require("transformers", purpose="the clip keyframe embedder")
        self.source = str(model)
        self.model_id = f"clip:{self.source}"
        self.batch_size = batch_size
        self.device = _pick_device(torch, device)
        try:
            self.processor = _load_processor(transformers, self.source)
            self.model = transformers.CLIPVisionModel.from_pretrained(self.source)
        except (OSError, ValueError) as exc:
            raise self._unavailable(exc) from exc
        self.model.to(self.device).eval()
        self._torch = torch
        log.info("loaded %s on %s", self.model_id, self.device)

    def _unavailable(self, exc: Exception) -> ModelUnavailable:
        local = Path(self.source).expanduser()
        if local.exists():
            where = "directory"
        elif self.source.startswith((".", "/", "~")) or "\\" in self.source:
            where = "path (it does not exist)"
        else:
            where = "hub id (not in the local cache; the hub is offline or unreachable)"

        model = self.source if where.startswith("hub") else DEFAULT_CLIP
        return ModelUnavailable(
            f"cannot load CLIP weights from {where} '{self.source}': {exc}",
            hint=offline_routes(model, CLIP_OFFLINE_ROUTES),
        )

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """RGB uint8 images -> (N, hidden_size) float32, unit rows; batched on the device."""
        out = [
            self._embed_batch(images[i : i + self.batch_size])
            for i in range(0, len(images), self.batch_size)
        ]
        if not out:
            return np.zeros((0, self.model.config.hidden_size), dtype=np.float32)
        return l2_normalize(np.concatenate(out))

    def _embed_batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        torch = self._torch
        # Frames are RGB already (the released script fed BGR from OpenCV by mistake).
        rgb = [np.ascontiguousarray(img[..., :3]) for img in images]
        inputs = self.processor(images=rgb, return_tensors="pt")
        pixels = inputs["pixel_values"].to(self.device, dtype=self.model.dtype)
        with torch.inference_mode():
            hidden = self.model(pixel_values=pixels).last_hidden_state
        return hidden[:, 0].float().cpu().numpy()

    def __getstate__(self) -> dict[str, Any]:
        # Pickles as its settings (for worker processes); the weights load again there.
        return {"source": self.source, "device": self.device, "batch_size": self.batch_size}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["source"], device=state["device"], batch_size=state["batch_size"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"ClipEmbedder({self.source!r}, device={self.device!r})"
