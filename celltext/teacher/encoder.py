"""The frozen teacher sentence encoder (Module 1) with an on-disk embedding cache.

``load_teacher("minilm")`` returns the process-wide :class:`Teacher` for all-MiniLM-L6-v2
(384-D); ``load_teacher("mpnet")`` the optional all-mpnet-base-v2 (768-D). Embeddings are
float32 and L2-normalised, so a dot product is a cosine.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from celltext.paths import cache_dir
from celltext.teacher.cache import EmbeddingCache, text_key
from celltext.teacher.install import TeacherNotInstalledError, minilm_path, mpnet_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TeacherSpec:
    """A known teacher: its id (used in cache keys and checkpoints), dim and weight locator."""

    id: str
    dim: int
    locate: Callable[[], Path]


TEACHERS: dict[str, TeacherSpec] = {
    "minilm": TeacherSpec("all-MiniLM-L6-v2", 384, minilm_path),
    "mpnet": TeacherSpec("all-mpnet-base-v2", 768, mpnet_path),
}
_ALIASES = {spec.id.lower(): key for key, spec in TEACHERS.items()}


def resolve_teacher_name(name: str) -> str:
    """Map ``minilm`` / ``all-MiniLM-L6-v2`` / ``mpnet`` / ... to a key of :data:`TEACHERS`."""
    key = name.lower().split("/")[-1]
    key = _ALIASES.get(key, key)
    if key not in TEACHERS:
        raise ValueError(f"unknown teacher {name!r}; choose from {sorted(TEACHERS)}")
    return key


class Teacher:
    """A sentence-transformers model behind a cache: ``encode(texts) -> (N, dim)`` float32."""

    def __init__(self, spec: TeacherSpec, model, cache_root: Path | None = None):
        self.spec = spec
        self.id = spec.id
        self.dim = spec.dim
        self.model = model
        self._cache_root = cache_root
        self._cache: EmbeddingCache | None = None
        self.stats = {"hits": 0, "misses": 0}

    @property
    def cache(self) -> EmbeddingCache:
        """The on-disk cache (created on first use, under ``cache_dir()/embeddings``)."""
        root = self._cache_root or cache_dir() / "embeddings"
        if self._cache is None or self._cache.dir.parent != Path(root):
            self._cache = EmbeddingCache(root, self.id, self.dim)
        return self._cache

    def _compute(self, texts: list[str], batch_size: int, progress: bool) -> np.ndarray:
        vecs = self.model.encode(
            texts,
            batch_size=batch_size,
            show_progress_bar=progress and stderr_is_terminal(),
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(vecs, dtype=np.float32).reshape(len(texts), self.dim)  # (N, D)

    def encode(
        self,
        texts: list[str],
        batch_size: int = 64,
        progress: bool = False,
        cache: bool = True,
    ) -> np.ndarray:
        """Embed ``texts``: float32 (N, dim), L2-normalised; cached by teacher id + text hash."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of strings, not a string")
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not cache:
            return self._compute(texts, batch_size, progress)
        keys = [text_key(t) for t in texts]
        found = self.cache.get(keys)
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in found and key not in missing:
                missing[key] = text
        self.stats["hits"] += len(texts) - len(missing)
        self.stats["misses"] += len(missing)
        if missing:
            new = self._compute(list(missing.values()), batch_size, progress)  # (M, D)
            self.cache.put(list(missing), new)
            found.update(zip(missing, new, strict=True))
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)  # (N, D)

    def features(self, texts: list[str]) -> dict[str, Any]:
        """The network's inputs for ``texts`` (tokenised, padded), as :meth:`forward` takes
        them."""
        return self.model.tokenize(list(texts))

    def forward(self, features: dict[str, Any]) -> np.ndarray:
        """One pass of the network (transformer, pooling, normalisation) over tokenised
        ``features``: no tokeniser, no cache, the least an embedding costs (``celltext
        bench``'s teacher floor). (N, dim) float32."""
        import torch

        with torch.inference_mode():  # the model adds its outputs to the dict: give a copy
            out = self.model(dict(features))["sentence_embedding"]
        return out.float().cpu().numpy()

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two texts."""
        va, vb = self.encode([a, b])
        return float(va @ vb)

    def __repr__(self) -> str:
        return f"Teacher(id={self.id!r}, dim={self.dim})"


def stderr_is_terminal() -> bool:
    """Progress bars only on a terminal: in logs and CI they are noise."""
    return sys.stderr.isatty()


@functools.cache
def _load(key: str) -> Teacher:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    spec = TEACHERS[key]
    folder = spec.locate()  # raises TeacherNotInstalledError with an install hint
    from sentence_transformers import SentenceTransformer

    log.info("loading teacher %s from %s", spec.id, folder)
    if not stderr_is_terminal():
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars
    model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    model.eval()
    dim = model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension") else None
    if dim is None and hasattr(model, "get_sentence_embedding_dimension"):
        dim = model.get_sentence_embedding_dimension()
    if dim is not None and dim != spec.dim:
        raise TeacherNotInstalledError(f"{spec.id}: expected dim {spec.dim}, model has {dim}")
    return Teacher(spec, model)


def load_teacher(name: str = "minilm") -> Teacher:
    """The process-wide teacher ``name`` (same object on repeated calls); loaded offline."""
    return _load(resolve_teacher_name(name))


def is_installed(name: str) -> bool:
    """Whether the weights of teacher ``name`` are available locally."""
    try:
        TEACHERS[resolve_teacher_name(name)].locate()
    except TeacherNotInstalledError:
        return False
    return True
