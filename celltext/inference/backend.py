"""What a runtime gives the predictor: the :class:`Backend` protocol and the loaded parts.

Two backends implement it, :class:`~celltext.inference.torch_backend.TorchBackend`
(PyTorch) and :class:`~celltext.inference.onnx_backend.OrtBackend` (onnxruntime, no torch
imported); ``tests/inference/test_backend_protocol.py`` checks both against it. What a
backend can do is declared in its :class:`Capabilities`, never probed with ``hasattr``.

A loader (:func:`~celltext.inference.loading.load_components`,
:func:`~celltext.inference.onnx_backend.load_export`) returns :class:`PredictorParts`.

Shapes: B rows, D teacher dimension, P prototype tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from celltext import generation
from celltext.generation import GenerationOptions, SpecialTokens, Stepper
from celltext.index import RetrievalIndex
from celltext.inference.options import PredictorConfig
from celltext.inference.records import ModelInfo
from celltext.inference.selector import AnswerSelector


@dataclass(frozen=True)
class Capabilities:
    """What a backend's model can do."""

    edits: bool = False
    """The decoder edits a prototype (retrieve and edit: ``generate(..., proto_ids)``)."""
    max_proto_tokens: int = 0
    """Prototype width the editing decoder was trained with (0 when it does not edit)."""
    activity: bool = False
    """The core exposes its lattice activity (the web page's lattice view)."""


@runtime_checkable
class Teacher(Protocol):
    """The frozen sentence encoder: ``encode(texts) -> (N, D)`` L2-normalised float32."""

    id: str
    dim: int

    def encode(self, texts: Sequence[str], **kwargs: Any) -> np.ndarray: ...


@runtime_checkable
class Backend(Protocol):
    """The model stages (core, decoder) of one runtime, on NumPy arrays.

    A backend provides the core and a decoder :class:`~celltext.generation.Stepper`;
    :meth:`generate`, the one decoding loop over that stepper, is written here once, so
    both runtimes subclass this protocol explicitly.
    """

    name: str
    dim: int
    tokenizer: Any
    """The decoder's :class:`~celltext.tokenizer.CellTokenizer` (ids <-> text)."""
    special: SpecialTokens
    capabilities: Capabilities

    def core(self, q_embs: np.ndarray) -> np.ndarray:
        """(B, D) question embeddings -> (B, D) predicted answer embeddings."""
        ...

    def stepper(self, embs: np.ndarray, proto_ids: np.ndarray | None) -> Stepper:
        """The decoder's incremental state for (B, D) embeddings (and (B, P) prototypes)."""
        ...

    def generate(
        self,
        embs: np.ndarray,
        proto_ids: np.ndarray | None,
        options: GenerationOptions,
        rng: np.random.Generator | None = None,
    ) -> list[list[int]]:
        """Token ids for (B, D) embeddings (editing ``proto_ids`` (B, P) when given):
        :func:`celltext.generation.generate` over this backend's :meth:`stepper`."""
        stepper = self.stepper(embs, proto_ids)
        return generation.generate(stepper, len(embs), self.special, options, rng)

    def activity(self, q_embs: np.ndarray) -> dict[str, Any] | None:
        """Lattice activity for one question embedding (1, D); None without a lattice."""
        ...


@dataclass
class PredictorParts:
    """Everything a loader gives a :class:`~celltext.inference.predictor.Predictor`."""

    teacher: Teacher
    backend: Backend | None
    """None: the retrieval-only mode (no model)."""
    info: ModelInfo
    selector: AnswerSelector
    bank: RetrievalIndex | None = None
    config: PredictorConfig | None = None
    """The options the model was exported with (onnxruntime exports carry theirs)."""


__all__ = ["Backend", "Capabilities", "PredictorParts", "Teacher"]
