"""Embedder interfaces. Output is always (N, D) float32, rows L2-normalised.

from diffcap.embed import get_image_embedder
emb = get_image_embedder("weightless")
vecs = emb.embed_images([frame.image for frame in frames])   # (N, D)
sims = vecs @ vecs[0]                                        # cosine similarities
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class ImageEmbedder(Protocol):
    #: Identifies model + version; recorded in outputs (e.g. "weightless-v1", "clip:<id>").
    model_id: str
    #: Similarity threshold under which a candidate becomes a keyframe, for this embedder.
    default_threshold: float

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """RGB uint8 images (H x W x 3, any sizes) -> (N, D) float32, L2-normalised."""
        ...


@runtime_checkable
class TextEmbedder(Protocol):
    model_id: str

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> (N, D) float32, L2-normalised."""
        ...


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)
