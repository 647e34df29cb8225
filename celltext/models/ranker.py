"""The ranker's trainable network (torch), mirrored in numpy by
:class:`celltext.inference.ranking.Ranker` for serving.

Three small MLPs (GELU, tanh form, so numpy reproduces torch to float precision):

- ``intent``: question embedding q (D) -> logits over the intents
  (:data:`~celltext.data.intents.INTENTS`);
- ``scorer``: a candidate's features (the static ones of
  :func:`celltext.inference.ranking.static_features` and two from the intent head) -> a score;
- ``null``: five question-level features -> the score of "no candidate answers this".

The sizes and the columns it reads come in :class:`RankerConfig` (built by
:func:`celltext.training.rank.ranker_config`), so this module needs nothing from inference.

The softmax over the K candidate scores and the null score is trained listwise (ListNet /
softmax cross-entropy, Cao et al. 2007, "Learning to Rank: From Pairwise Approach to
Listwise Approach") with every candidate that carries the reference answer as a positive.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from celltext.data.intents import INTENTS, OPEN_INTENTS


@dataclass
class RankerConfig:
    """Sizes of the ranker's three MLPs and the feature columns it reads."""

    n_static: int  # static candidate features (the scorer gets two more from the intent head)
    exact_col: int  # the static column "subject_exact"
    fuzzy_col: int  # the static column "subject_fuzzy"
    dim: int = 384
    intent_hidden: int = 256
    scorer_hidden: int = 32
    null_hidden: int = 16
    n_null: int = 5


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_in, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, n_out)
    )


class RankerNet(nn.Module):
    """Intent head + candidate scorer + null scorer (see the module docstring)."""

    def __init__(self, cfg: RankerConfig):
        super().__init__()
        self.cfg = cfg
        self.intent = _mlp(cfg.dim, cfg.intent_hidden, len(INTENTS))
        self.scorer = _mlp(cfg.n_static + 2, cfg.scorer_hidden, 1)
        self.null = _mlp(cfg.n_null, cfg.null_hidden, 1)
        self.register_buffer(
            "open_mask", torch.tensor([n in OPEN_INTENTS for n in INTENTS]), persistent=False
        )

    def forward(
        self, q: torch.Tensor, static: torch.Tensor, cand_intents: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """q (B, D), static (B, K, S), cand_intents (B, K) -> (log P over K + null
        (B, K + 1), log P(intent) (B, I))."""
        logp = torch.log_softmax(self.intent(q), dim=-1)  # (B, I)
        cand_logp = torch.gather(logp, 1, cand_intents)  # (B, K)
        top = (cand_intents == logp.argmax(dim=1, keepdim=True)).float()
        feats = torch.cat([static, cand_logp[..., None], top[..., None]], dim=2)
        cand = self.scorer(feats)[..., 0]  # (B, K)
        exact, fuzzy = self.cfg.exact_col, self.cfg.fuzzy_col
        null_in = torch.stack(
            [static[:, 0, 0], logp[:, self.open_mask].exp().sum(dim=1),
             static[:, :, exact].amax(dim=1), static[:, :, fuzzy].amax(dim=1),
             cand_logp.exp().amax(dim=1)], dim=1,
        )  # fmt: skip
        null = self.null(null_in)  # (B, 1)
        return torch.log_softmax(torch.cat([cand, null], dim=1), dim=1), logp


def listwise_loss(logp: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """-log of the probability mass on the positives (B, K + 1) bool (null included)."""
    masked = logp.masked_fill(~positives, float("-inf"))
    return -torch.logsumexp(masked, dim=1).mean()
