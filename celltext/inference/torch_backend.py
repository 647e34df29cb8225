"""The PyTorch stages of the predictor: a checkpointed core and decoder.

:class:`TorchBackend` implements :class:`~celltext.inference.backend.Backend`: ``core(q) ->
e`` on NumPy arrays, ``generate(...)`` (the one decoding loop,
:func:`celltext.generation.generate`, over this backend's stepper), the model's
``tokenizer`` and its declared :class:`~celltext.inference.backend.Capabilities`. The
onnxruntime twin is :class:`celltext.inference.onnx_backend.OrtBackend`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from celltext.generation import GenerationOptions
from celltext.inference.activity import lattice_activity, supports_activity
from celltext.inference.backend import Capabilities
from celltext.models.stepper import generate_with


class TorchBackend:
    """``system`` is a :class:`celltext.models.system.CellTextModel` (``.core``,
    ``.decoder``); ``tokenizer`` its :class:`celltext.tokenizer.CellTokenizer`; ``device``
    where the model runs (``cuda`` for GPU evaluation; arrays come and go as NumPy)."""

    name = "torch"

    def __init__(self, system, tokenizer, device: str = "cpu"):
        self.system = system.eval().to(device)
        self.tokenizer = tokenizer
        self.device = device
        decoder = system.decoder
        self.dim = int(getattr(system, "dim", decoder.cfg.dim))
        edits = bool(decoder.edits)
        self.capabilities = Capabilities(
            edits=edits,
            max_proto_tokens=int(decoder.cfg.max_proto_tokens) if edits else 0,
            activity=supports_activity(system.core),
        )

    def core(self, q_embs: np.ndarray) -> np.ndarray:
        """(B, D) question embeddings -> (B, D) predicted answer embeddings."""
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(q_embs, np.float32)).to(self.device)
            out = self.system.core(x)
            if isinstance(out, tuple):  # (embedding, activity) from return_activity cores
                out = out[0]
            return out.float().cpu().numpy()

    def generate(
        self,
        embs: np.ndarray,
        proto_ids: np.ndarray | None,
        options: GenerationOptions,
        rng: np.random.Generator | None = None,
    ) -> list[list[int]]:
        """Token ids for (B, D) embeddings (editing ``proto_ids`` (B, P) when given)."""
        with torch.inference_mode():
            proto = None if proto_ids is None else torch.from_numpy(proto_ids)  # (B, P)
            emb = np.ascontiguousarray(embs, np.float32)
            return generate_with(self.system.decoder, emb, options, rng, proto)

    def activity(self, q_embs: np.ndarray) -> dict[str, Any] | None:
        """Lattice activity of the core for one question embedding (1, D)."""
        return lattice_activity(self.system.core, q_embs)
