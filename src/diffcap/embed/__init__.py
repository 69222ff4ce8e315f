"""Image and text embedders behind small protocols (see :mod:`diffcap.embed.base`).

    from diffcap.embed import get_image_embedder
    emb = get_image_embedder("weightless")          # or "clip", "clip:/path/to/clip"
    vecs = emb.embed_images(images)                 # (N, D) float32, unit rows

Image embedders: :mod:`diffcap.embed.registry`; text embedders: :mod:`diffcap.embed.text`.
"""

from diffcap.embed.base import ImageEmbedder, TextEmbedder, l2_normalize
from diffcap.embed.registry import (
    get_image_embedder,
    image_embedder_names,
    register_image_embedder,
)
from diffcap.embed.text import get_text_embedder

__all__ = [
    "ImageEmbedder",
    "TextEmbedder",
    "get_image_embedder",
    "get_text_embedder",
    "image_embedder_names",
    "l2_normalize",
    "register_image_embedder",
]
