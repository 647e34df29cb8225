"""What a runtime gives the predictor: the :class:`Backend` protocol and the loaded parts.

Two backends implement it, :class:`~celltext.inference.torch_backend.TorchBackend`
(PyTorch) and :class:`~celltext.inference.onnx_backend.OrtBackend` (onnxruntime, no torch
imported); ``tests/inference/test_backend_protocol.py`` checks both against it. What a
backend can do is declared in its :class:`Capabilities`, never probed with ``hasattr``.

A loader (:func:`~celltext.inference.loading.load_components`,
:func:`~celltext.inference.onnx_backend.load_export`) returns :class:`PredictorParts`.

Greedy decoding with a prototype is speculative (:mod:`celltext.inference.speculative`: the
prototype's tokens are a draft verified in one decoder call), in groups of
``speculative_rows`` rows, default :data:`SPECULATIVE_ROWS` or ``$CELLTEXT_SPECULATIVE_ROWS``
(0: always the plain loop); its output is the plain loop's.

Shapes: B rows, D teacher dimension, P prototype tokens.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from celltext import generation
from celltext.generation import GenerationOptions, SpecialTokens
from celltext.index import RetrievalIndex
from celltext.inference import speculative
from celltext.inference.options import PredictorConfig
from celltext.inference.ranking import Ranker
from celltext.inference.records import ModelInfo
from celltext.inference.selector import AnswerSelector

SPECULATIVE_ROWS = 2
"""Rows decoded speculatively together. A verify block costs every row the width of the
longest draft and the group advances by its shortest accepted run, so a big batch is
decoded in groups of this many rows (each group a few calls) rather than as one: a batch of
64 answered 86/s in groups of 2, 80/s alone, 69/s in fours, 65/s in eights (onnxruntime,
2-core machine of the docs)."""


def speculative_rows(value: int | None = None) -> int:
    """``value``, else ``$CELLTEXT_SPECULATIVE_ROWS``, else :data:`SPECULATIVE_ROWS`."""
    if value is not None:
        return int(value)
    return int(os.environ.get("CELLTEXT_SPECULATIVE_ROWS", SPECULATIVE_ROWS))


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
    speculative_rows: int
    """Batches of up to this many rows decode greedily with their prototype as a draft
    (:func:`speculative_rows`; 0: never)."""

    def core(self, q_embs: np.ndarray) -> np.ndarray:
        """(B, D) question embeddings -> (B, D) predicted answer embeddings."""
        ...

    def stepper(self, embs: np.ndarray, proto_ids: np.ndarray | None) -> speculative.DraftStepper:
        """The decoder's incremental state for (B, D) embeddings (and (B, P) prototypes): a
        :class:`~celltext.generation.Stepper` that also verifies token blocks."""
        ...

    def generate(
        self,
        embs: np.ndarray,
        proto_ids: np.ndarray | None,
        options: GenerationOptions,
        rng: np.random.Generator | None = None,
    ) -> list[list[int]]:
        """Token ids for (B, D) embeddings (editing ``proto_ids`` (B, P) when given):
        :func:`celltext.generation.generate` over this backend's :meth:`stepper`; greedy
        decoding with prototypes verifies the prototype's tokens as a draft, in groups of
        ``speculative_rows`` rows (:func:`celltext.inference.speculative.generate`, the
        same tokens in fewer decoder calls)."""
        greedy = options.num_beams == 1 and not options.do_sample
        rows = self.speculative_rows
        if proto_ids is None or not greedy or rows <= 0 or not len(embs):
            stepper = self.stepper(embs, proto_ids)
            return generation.generate(stepper, len(embs), self.special, options, rng)
        out: list[list[int]] = []
        for start in range(0, len(embs), rows):  # a big batch: speculative groups of rows
            part = slice(start, start + rows)
            protos = speculative.prototype_tokens(proto_ids[part], self.special.pad_id)
            stepper = self.stepper(embs[part], proto_ids[part])
            out += speculative.generate(stepper, protos, self.special, options)
        return out

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
    ranker: Ranker | None = None
    """The model's ranker (``ranker.npz`` beside it), if it has one."""


__all__ = [
    "SPECULATIVE_ROWS", "Backend", "Capabilities", "PredictorParts", "Teacher",
    "speculative_rows",
]  # fmt: skip
