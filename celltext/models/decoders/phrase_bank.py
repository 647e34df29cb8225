"""``phrase_bank_v1``: the retrieval "decoder" as a registered module with no trainable weights.

Why a module and not a special case in the CLI: wrapped like this, retrieval goes through
every path a generative decoder goes through (``create_model``, ``models list``, the
registry-wide tests, safetensors checkpoints loaded with ``strict=True``, ``generate``),
so the baseline and the fallback need no second code path. The bank lives in buffers:
``embeddings`` (N, D) unit rows and ``token_ids`` (N, max_len) (each answer's tokens then
``<eos>``, padded with ``<pad>``). ``n_entries`` and ``max_len`` are config fields, so a
checkpoint's config rebuilds buffers of the right shape before the strict load.

``generate`` returns the tokens of the nearest known answer (every decoding mode gives the same
result: retrieval is deterministic). ``forward`` is the matching teacher-forced
distribution: log-probability 0 on the retrieved answer's next token and -1e4 elsewhere.
It is built from the one retrieval index (:class:`celltext.index.RetrievalIndex`, answer
side); for texts, cosines and top-k use the index itself.

Shape legend: B batch, N entries, D teacher dim, L token length, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from celltext.config import Config, require
from celltext.index import RetrievalIndex, unit_rows
from celltext.models.zoo import register_model

_NEG = -1e4


@dataclass
class PhraseBankDecoderConfig(Config):
    """Retrieval decoder: its buffers' shapes."""

    dim: int = 384
    vocab_size: int = 4096
    n_entries: int = 0  # N known answers (0: an empty bank, filled by ``from_bank``)
    max_len: int = 64  # tokens kept per answer, including <eos>
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2

    def validate(self) -> None:
        require(self.dim > 0, "dim", "must be > 0")
        require(self.vocab_size > 2, "vocab_size", "must exceed the special token ids")
        require(self.n_entries >= 0, "n_entries", "must be >= 0")
        require(self.max_len >= 1, "max_len", "must be >= 1")


@register_model("phrase_bank_v1", kind="decoder", config_cls=PhraseBankDecoderConfig)
class PhraseBankDecoder(nn.Module):
    """Nearest known answer by cosine similarity; zero trainable parameters."""

    def __init__(self, cfg: PhraseBankDecoderConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("embeddings", torch.zeros(cfg.n_entries, cfg.dim))
        self.register_buffer(
            "token_ids", torch.full((cfg.n_entries, cfg.max_len), cfg.pad_id, dtype=torch.long)
        )

    @classmethod
    def from_bank(
        cls, index: RetrievalIndex, tokenizer: Any, max_len: int = 64
    ) -> PhraseBankDecoder:
        """Build from the answers of a :class:`RetrievalIndex` and a ``CellTokenizer``
        (texts -> token ids)."""
        cfg = PhraseBankDecoderConfig(
            dim=index.dim,
            vocab_size=tokenizer.vocab_size,
            n_entries=len(index),
            max_len=max_len,
            pad_id=tokenizer.pad_id,
            bos_id=tokenizer.bos_id,
            eos_id=tokenizer.eos_id,
        )
        model = cls(cfg)
        ids = torch.full((len(index), max_len), cfg.pad_id, dtype=torch.long)
        for i, seq in enumerate(tokenizer.encode_batch(index.answers)):
            seq = seq[: max_len - 1] + [cfg.eos_id]
            ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        model.embeddings.copy_(torch.from_numpy(unit_rows(index.answer_embs)))  # (N, D)
        model.token_ids.copy_(ids)
        return model

    def _nearest(self, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Index (B,) and cosine (B,) of the nearest entry to each embedding (B, D)."""
        if emb.dim() != 2 or emb.shape[1] != self.cfg.dim:
            raise ValueError(f"expected emb of shape (B, {self.cfg.dim}), got {tuple(emb.shape)}")
        if self.embeddings.shape[0] == 0:
            raise ValueError("the phrase bank is empty: build it with PhraseBankDecoder.from_bank")
        sims = F.normalize(emb.float(), dim=-1) @ self.embeddings.T  # (B, N)
        cos, idx = sims.max(dim=-1)
        return idx, cos

    def forward(self, emb: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, L, V) of the retrieved answer (position i -> token i+1)."""
        if input_ids.dim() != 2 or input_ids.shape[0] != emb.shape[0]:
            raise ValueError(
                f"expected input_ids of shape ({emb.shape[0]}, L), got {tuple(input_ids.shape)}"
            )
        idx, _ = self._nearest(emb)
        length = input_ids.shape[1]
        target = self.token_ids[idx]  # (B, max_len): what follows <bos>, <eos>, padding
        if length > target.shape[1]:
            target = F.pad(target, (0, length - target.shape[1]), value=self.cfg.pad_id)
        target = target[:, :length]  # (B, L)
        logits = emb.new_full((emb.shape[0], length, self.cfg.vocab_size), _NEG)
        return logits.scatter(2, target.unsqueeze(-1), 0.0)  # (B, L, V)

    @torch.no_grad()
    def generate(self, emb: Any, max_new_tokens: int = 48, **kwargs: Any) -> list[list[int]]:
        """Tokens (no BOS/EOS) of the nearest known answer; ``kwargs`` (num_beams, do_sample...) are ignored."""
        emb = torch.as_tensor(emb, dtype=torch.float32, device=self.embeddings.device)
        idx, _ = self._nearest(emb)
        out = []
        for row in self.token_ids[idx].tolist():
            ids = [t for t in row if t != self.cfg.pad_id]
            if self.cfg.eos_id in ids:
                ids = ids[: ids.index(self.cfg.eos_id)]
            out.append(ids[:max_new_tokens])
        return out

    def similarity(self, emb: torch.Tensor) -> torch.Tensor:
        """Cosine (B,) of each embedding to its nearest entry (a confidence signal)."""
        return self._nearest(emb)[1]
