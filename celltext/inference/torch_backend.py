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

from celltext.generation import SpecialTokens
from celltext.inference.activity import lattice_activity, supports_activity
from celltext.inference.backend import Backend, Capabilities, speculative_rows
from celltext.models.stepper import TorchStepper


class TorchBackend(Backend):
    """``system`` is a :class:`celltext.models.system.CellTextModel` (``.core``,
    ``.decoder``); ``tokenizer`` its :class:`celltext.tokenizer.CellTokenizer`; ``device``
    where the model runs (``cuda`` for GPU evaluation; arrays come and go as NumPy);
    ``speculative`` the largest batch decoded speculatively (default
    :func:`~celltext.inference.backend.speculative_rows`; 0: never)."""

    name = "torch"

    def __init__(self, system, tokenizer, device: str = "cpu", speculative: int | None = None):
        self.system = system.eval().to(device)
        self.speculative_rows = speculative_rows(speculative)
        self.tokenizer = tokenizer
        self.device = device
        decoder = system.decoder
        self.dim = int(getattr(system, "dim", decoder.cfg.dim))
        self.special = SpecialTokens(decoder.cfg.pad_id, decoder.cfg.bos_id, decoder.cfg.eos_id)
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

    def stepper(self, embs: np.ndarray, proto_ids: np.ndarray | None) -> TorchStepper:
        """The decoder's KV caches / recurrent states for (B, D) embeddings, in the weights'
        dtype and device (the stepper runs without autograd)."""
        param = next(self.system.decoder.parameters())
        emb = torch.as_tensor(np.ascontiguousarray(embs), dtype=param.dtype, device=param.device)
        proto = None if proto_ids is None else torch.as_tensor(proto_ids, device=param.device)
        return TorchStepper(self.system.decoder, emb, True, proto)  # emb (B, D), proto (B, P)

    def activity(self, q_embs: np.ndarray) -> dict[str, Any] | None:
        """Lattice activity of the core for one question embedding (1, D)."""
        return lattice_activity(self.system.core, q_embs)
