"""What each stage trains: batches, losses and validation metrics.

Shapes: B batch, L tokens, V vocabulary, D teacher dim.

- :class:`DecoderTask` (stages ``decoder`` and ``finetune``): embedding -> text by
  next-token cross-entropy under teacher forcing. Inputs can be noised (Gaussian, then
  re-normalised onto the unit sphere) so the decoder tolerates a core's errors.
- :class:`CoreTask` (stage ``core``): question embedding -> answer embedding with
  ``w_cos (1 - cos) + w_mse ||p - t||^2 + w_nce InfoNCE`` (in-batch negatives,
  van den Oord et al. 2018; CLIP-style temperature).

Validation runs on every process over its shard (rows ``rank::world``) and the sums are
reduced, so every process sees identical metrics (and takes identical early-stopping
decisions).
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from celltext.training.data import TextTable

_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")


def normalize_answer(text: str) -> str:
    """Lower-case, punctuation and extra spaces removed (the exact-match normalisation)."""
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def noisy(emb: torch.Tensor, std: float) -> torch.Tensor:
    """``emb`` (B, D) plus N(0, std^2) per dimension, re-normalised to unit length."""
    if std <= 0:
        return emb
    return F.normalize(emb + std * torch.randn_like(emb), dim=-1)


def info_nce(pred: torch.Tensor, target: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE with the other targets of the batch as negatives (pred i <-> target i)."""
    logits = F.normalize(pred, dim=-1) @ F.normalize(target, dim=-1).T / temperature  # (B, B)
    labels = torch.arange(pred.shape[0], device=pred.device)
    return F.cross_entropy(logits, labels)


def core_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    cosine_weight: float,
    mse_weight: float,
    contrastive_weight: float,
    temperature: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The core's training loss and its parts (pred, target: (B, D))."""
    cos = F.cosine_similarity(pred, target, dim=-1)  # (B,)
    parts = {
        "cos_loss": (1.0 - cos).mean(),
        "mse": (pred - target).pow(2).sum(-1).mean(),
    }
    loss = cosine_weight * parts["cos_loss"] + mse_weight * parts["mse"]
    if contrastive_weight > 0 and pred.shape[0] > 1:
        parts["nce"] = info_nce(pred, target, temperature)
        loss = loss + contrastive_weight * parts["nce"]
    return loss, parts


def _shard(n: int, rank: int, world: int) -> torch.Tensor:
    return torch.arange(rank, n, world)


def _batches(idx: torch.Tensor, size: int):
    for start in range(0, len(idx), size):
        yield idx[start : start + size]


@dataclass
class EvalContext:
    """Where evaluation runs and how it reduces: ``reduce(tensor) -> sum over processes``."""

    device: torch.device
    rank: int = 0
    world: int = 1
    reduce: Any = None
    batch_size: int = 256

    def sum(self, values: list[float]) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.reduce is not None and self.world > 1:
            t = self.reduce(t)
        return t.tolist()


class DecoderTask:
    """Embedding -> text (teacher forcing). ``inputs`` may differ from the texts' own
    embeddings (stage ``finetune``: the core's predictions)."""

    default_metric = "val/token_acc"

    def __init__(
        self,
        train: TextTable,
        val: TextTable,
        train_inputs: torch.Tensor | None = None,
        val_inputs: torch.Tensor | None = None,
        noise_std: float = 0.0,
        label_smoothing: float = 0.0,
        generate_samples: int = 0,
        tokenizer: Any = None,
    ):
        self.train, self.val = train, val
        self.train_inputs = train.emb if train_inputs is None else train_inputs  # (N, D)
        self.val_inputs = val.emb if val_inputs is None else val_inputs
        self.noise_std = noise_std
        self.label_smoothing = label_smoothing
        self.generate_samples = generate_samples
        self.tokenizer = tokenizer

    @property
    def n_train(self) -> int:
        return len(self.train)

    def batch(self, idx: torch.Tensor, device: torch.device) -> dict[str, torch.Tensor]:
        """Rows ``idx``, trimmed to their longest sequence."""
        width = int(self.train.lengths[idx].max())
        return {
            "emb": self.train_inputs[idx].to(device),
            "ids": self.train.ids[idx, :width].to(device),
            "lengths": self.train.lengths[idx].to(device),
        }

    @staticmethod
    def _targets(ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Next-token targets (B, L-1) with -100 past each sequence's end."""
        targets = ids[:, 1:].clone()
        pos = torch.arange(targets.shape[1], device=ids.device)[None, :]  # (1, L-1)
        targets[pos >= (lengths[:, None] - 1)] = -100
        return targets

    def loss(self, module: nn.Module, batch: dict[str, torch.Tensor]):
        """Mean next-token cross-entropy (and the number of target tokens)."""
        emb = noisy(batch["emb"], self.noise_std)
        logits = module(emb, batch["ids"][:, :-1])  # (B, L-1, V)
        targets = self._targets(batch["ids"], batch["lengths"])
        loss = F.cross_entropy(
            logits.float().flatten(0, 1),
            targets.flatten(),
            ignore_index=-100,
            label_smoothing=self.label_smoothing,
        )
        return loss, {"tokens": int((targets != -100).sum())}

    @torch.no_grad()
    def evaluate(self, module: nn.Module, ctx: EvalContext) -> dict[str, float]:
        """``val/loss``, ``val/perplexity``, ``val/token_acc`` (and ``val/exact_match``)."""
        nll = correct = count = 0.0
        for idx in _batches(_shard(len(self.val), ctx.rank, ctx.world), ctx.batch_size):
            width = int(self.val.lengths[idx].max())
            ids = self.val.ids[idx, :width].to(ctx.device)
            logits = module(self.val_inputs[idx].to(ctx.device), ids[:, :-1]).float()
            targets = self._targets(ids, self.val.lengths[idx].to(ctx.device))
            mask = targets != -100
            nll += float(
                F.cross_entropy(
                    logits.flatten(0, 1), targets.flatten(), reduction="sum", ignore_index=-100
                )
            )
            correct += float(((logits.argmax(-1) == targets) & mask).sum())
            count += float(mask.sum())
        nll, correct, count = ctx.sum([nll, correct, count])
        loss = nll / max(count, 1.0)
        metrics = {
            "val/loss": loss,
            "val/perplexity": math.exp(min(loss, 50.0)),
            "val/token_acc": correct / max(count, 1.0),
        }
        if self.generate_samples and self.tokenizer is not None:
            metrics["val/exact_match"] = self._exact_match(module, ctx)
        return metrics

    def _exact_match(self, module: nn.Module, ctx: EvalContext) -> float:
        n = min(self.generate_samples, len(self.val))
        idx = _shard(n, ctx.rank, ctx.world)
        hits = 0.0
        for chunk in _batches(idx, 64):
            max_new = int(self.val.lengths[chunk].max()) + 4
            out = module.generate(self.val_inputs[chunk].to(ctx.device), max_new_tokens=max_new)
            for i, ids in zip(chunk.tolist(), out, strict=True):
                hyp = normalize_answer(self.tokenizer.decode(ids))
                hits += float(hyp == normalize_answer(self.val.texts[i]))
        hits, total = ctx.sum([hits, float(len(idx))])
        return hits / max(total, 1.0)


class CoreTask:
    """Question embedding -> answer embedding."""

    default_metric = "val/cosine"

    def __init__(
        self,
        q_emb: torch.Tensor,
        a_emb: torch.Tensor,
        val_q: torch.Tensor,
        val_a: torch.Tensor,
        cosine_weight: float = 1.0,
        mse_weight: float = 1.0,
        contrastive_weight: float = 0.1,
        temperature: float = 0.05,
        val_answers: list[str] | None = None,
    ):
        self.q_emb, self.a_emb, self.val_q, self.val_a = q_emb, a_emb, val_q, val_a
        self.weights = (cosine_weight, mse_weight, contrastive_weight, temperature)
        self.val_answers = val_answers

    @property
    def n_train(self) -> int:
        return self.q_emb.shape[0]

    def batch(self, idx: torch.Tensor, device: torch.device) -> dict[str, torch.Tensor]:
        return {"q": self.q_emb[idx].to(device), "a": self.a_emb[idx].to(device)}

    def loss(self, module: nn.Module, batch: dict[str, torch.Tensor]):
        pred = module(batch["q"]).float()  # (B, D)
        loss, parts = core_loss(pred, batch["a"], *self.weights)
        return loss, {k: float(v.detach()) for k, v in parts.items()}

    @torch.no_grad()
    def evaluate(self, module: nn.Module, ctx: EvalContext) -> dict[str, float]:
        """``val/cosine`` (mean cosine to the true answer embedding), ``val/loss``,
        ``val/mse`` and ``val/retrieval_top1`` (the nearest validation answer is the true one)."""
        answers = self.val_answers or [str(i) for i in range(self.val_a.shape[0])]
        uniq = list(dict.fromkeys(answers))
        pos_of = {a: i for i, a in enumerate(uniq)}
        first = torch.tensor([answers.index(a) for a in uniq])
        bank = F.normalize(self.val_a[first].to(ctx.device), dim=-1)  # (U, D)
        cos_sum = loss_sum = mse_sum = top1 = 0.0
        idx_all = _shard(self.val_q.shape[0], ctx.rank, ctx.world)
        for idx in _batches(idx_all, ctx.batch_size):
            pred = module(self.val_q[idx].to(ctx.device)).float()  # (b, D)
            target = self.val_a[idx].to(ctx.device)
            cos = F.cosine_similarity(pred, target, dim=-1)
            loss, parts = core_loss(pred, target, *self.weights)
            cos_sum += float(cos.sum())
            loss_sum += float(loss) * len(idx)
            mse_sum += float(parts["mse"]) * len(idx)
            nearest = (F.normalize(pred, dim=-1) @ bank.T).argmax(-1).tolist()
            truth = [pos_of[answers[i]] for i in idx.tolist()]
            top1 += sum(float(n == t) for n, t in zip(nearest, truth, strict=True))
        cos_sum, loss_sum, mse_sum, top1, n = ctx.sum(
            [cos_sum, loss_sum, mse_sum, top1, float(len(idx_all))]
        )
        n = max(n, 1.0)
        return {
            "val/cosine": cos_sum / n,
            "val/loss": loss_sum / n,
            "val/mse": mse_sum / n,
            "val/retrieval_top1": top1 / n,
        }
