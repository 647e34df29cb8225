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
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from celltext.index import nearest_rows
from celltext.metrics import normalize_text
from celltext.training.data import TextTable


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


def bank_nce(
    pred: torch.Tensor, bank: torch.Tensor, target_idx: torch.Tensor, temperature: float
) -> torch.Tensor:
    """InfoNCE against the whole answer bank (U, D): every other known answer is a
    negative, the hardest ones included (pred (B, D), target_idx (B,) rows of ``bank``)."""
    logits = F.normalize(pred, dim=-1) @ bank.T / temperature  # (B, U); bank rows are unit
    return F.cross_entropy(logits, target_idx)


@dataclass
class Prototypes:
    """Retrieve-and-edit inputs: for row i of a text table, ``index[i]`` is the row of
    ``table`` whose tokens are its prototype. Per batch, with probability ``pure_rate``
    no row gets a prototype (plain generation); otherwise each row gets its own text as
    prototype with probability ``self_rate`` (learn to copy a seen text), else, with
    probability ``hypothesis_rate``, row i of ``hypotheses`` (the decoder's own attempt at
    the text: learn to correct it; stage ``correct``), else its nearest neighbour (learn to
    edit)."""

    table: TextTable
    index: torch.Tensor  # (N,)
    max_tokens: int = 40
    self_rate: float = 0.2
    pure_rate: float = 0.3
    hypotheses: TextTable | None = None  # (N rows, aligned with the trained table)
    hypothesis_rate: float = 0.0

    def ids_for(self, idx: torch.Tensor, own: TextTable) -> torch.Tensor | None:
        """Prototype token ids (B, P) for rows ``idx`` of ``own``, or None (pure batch)."""
        g = torch.Generator().manual_seed(int(idx.sum()) * 7919 + int(idx[0]) + len(idx))
        if float(torch.rand((), generator=g)) < self.pure_rate:
            return None
        use_self = torch.rand(len(idx), generator=g) < self.self_rate
        use_hyp = torch.zeros(len(idx), dtype=torch.bool)
        if self.hypotheses is not None:  # drawn only here: the other stages' draws are unchanged
            use_hyp = torch.rand(len(idx), generator=g) < self.hypothesis_rate
        rows = []
        for i, s, h in zip(idx.tolist(), use_self.tolist(), use_hyp.tolist(), strict=True):
            if s:
                table, j = own, i
            elif h:
                table, j = self.hypotheses, i
            else:
                table, j = self.table, int(self.index[i])
            n = int(table.lengths[j])
            rows.append(table.ids[j, 1 : n - 1][: self.max_tokens])  # without bos/eos
        return proto_batch(rows)


def proto_batch(rows: list[torch.Tensor], pad_id: int = 0) -> torch.Tensor:
    """Right-pad token rows into (B, P) with ``pad_id`` (P >= 1)."""
    width = max(1, max((len(r) for r in rows), default=1))
    out = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def core_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    cosine_weight: float,
    mse_weight: float,
    contrastive_weight: float,
    temperature: float,
    bank: torch.Tensor | None = None,
    target_idx: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The core's training loss and its parts (pred, target: (B, D)); with ``bank`` and
    ``target_idx`` the contrastive term ranks against every known answer."""
    cos = F.cosine_similarity(pred, target, dim=-1)  # (B,)
    parts = {
        "cos_loss": (1.0 - cos).mean(),
        "mse": (pred - target).pow(2).sum(-1).mean(),
    }
    loss = cosine_weight * parts["cos_loss"] + mse_weight * parts["mse"]
    if contrastive_weight > 0 and bank is not None and target_idx is not None:
        parts["nce"] = bank_nce(pred, bank, target_idx, temperature)
        loss = loss + contrastive_weight * parts["nce"]
    elif contrastive_weight > 0 and pred.shape[0] > 1:
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
        prototypes: Prototypes | None = None,
        val_prototypes: Prototypes | None = None,
    ):
        self.prototypes, self.val_prototypes = prototypes, val_prototypes
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
        out = {
            "emb": self.train_inputs[idx].to(device),
            "ids": self.train.ids[idx, :width].to(device),
            "lengths": self.train.lengths[idx].to(device),
        }
        if self.prototypes is not None:
            proto = self.prototypes.ids_for(idx, self.train)
            if proto is not None:
                out["proto_ids"] = proto.to(device)
        return out

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
        extra = {"proto_ids": batch["proto_ids"]} if "proto_ids" in batch else {}
        logits = module(emb, batch["ids"][:, :-1], **extra)  # (B, L-1, V)
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
        """``val/loss``, ``val/perplexity``, ``val/token_acc`` (and ``val/exact_match``) of
        plain generation; with prototypes also ``val/edit_loss`` and ``val/edit_token_acc``."""
        metrics = self._teacher_forced(module, ctx, None)
        if self.val_prototypes is not None:
            edit = self._teacher_forced(module, ctx, self.val_prototypes)
            metrics["val/edit_loss"] = edit["val/loss"]
            metrics["val/edit_token_acc"] = edit["val/token_acc"]
        if self.generate_samples and self.tokenizer is not None:
            metrics["val/exact_match"] = self._exact_match(module, ctx)
        return metrics

    def _teacher_forced(self, module: nn.Module, ctx: EvalContext, protos) -> dict[str, float]:
        nll = correct = count = 0.0
        for idx in _batches(_shard(len(self.val), ctx.rank, ctx.world), ctx.batch_size):
            width = int(self.val.lengths[idx].max())
            ids = self.val.ids[idx, :width].to(ctx.device)
            extra = {}
            if protos is not None:
                rows = [
                    protos.table.ids[j, 1 : int(protos.table.lengths[j]) - 1][: protos.max_tokens]
                    for j in protos.index[idx].tolist()
                ]
                extra["proto_ids"] = proto_batch(rows).to(ctx.device)
            logits = module(self.val_inputs[idx].to(ctx.device), ids[:, :-1], **extra).float()
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
        return {
            "val/loss": loss,
            "val/perplexity": math.exp(min(loss, 50.0)),
            "val/token_acc": correct / max(count, 1.0),
        }

    def _exact_match(self, module: nn.Module, ctx: EvalContext) -> float:
        n = min(self.generate_samples, len(self.val))
        idx = _shard(n, ctx.rank, ctx.world)
        hits = 0.0
        for chunk in _batches(idx, 64):
            max_new = int(self.val.lengths[chunk].max()) + 4
            out = module.generate(self.val_inputs[chunk].to(ctx.device), max_new_tokens=max_new)
            for i, ids in zip(chunk.tolist(), out, strict=True):
                hyp = normalize_text(self.tokenizer.decode(ids))
                hits += float(hyp == normalize_text(self.val.texts[i]))
        hits, total = ctx.sum([hits, float(len(idx))])
        return hits / max(total, 1.0)


def _first_rows(texts: list[str], pos: dict[str, int], n: int) -> torch.Tensor:
    """Row of the first occurrence of each distinct text, in ``pos`` order."""
    first = torch.full((n,), -1, dtype=torch.long)
    for i, t in enumerate(texts):
        if first[pos[t]] < 0:
            first[pos[t]] = i
    return first


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
        train_answers: list[str] | None = None,
    ):
        self.q_emb, self.a_emb, self.val_q, self.val_a = q_emb, a_emb, val_q, val_a
        self.bank = self.target_idx = None
        if train_answers is not None:  # rank against every distinct training answer
            uniq = list(dict.fromkeys(train_answers))
            pos = {a: i for i, a in enumerate(uniq)}
            self.target_idx = torch.tensor([pos[a] for a in train_answers])  # (N,)
            rows = _first_rows(train_answers, pos, len(uniq))
            self.bank = F.normalize(a_emb[rows].float(), dim=-1)  # (U, D)
        self.weights = (cosine_weight, mse_weight, contrastive_weight, temperature)
        self.val_answers = val_answers

    @property
    def n_train(self) -> int:
        return self.q_emb.shape[0]

    def batch(self, idx: torch.Tensor, device: torch.device) -> dict[str, torch.Tensor]:
        out = {"q": self.q_emb[idx].to(device), "a": self.a_emb[idx].to(device)}
        if self.target_idx is not None:
            out["target_idx"] = self.target_idx[idx].to(device)
        return out

    def loss(self, module: nn.Module, batch: dict[str, torch.Tensor]):
        pred = module(batch["q"]).float()  # (B, D)
        bank = None if self.bank is None else self.bank.to(pred.device)
        loss, parts = core_loss(
            pred, batch["a"], *self.weights, bank=bank, target_idx=batch.get("target_idx")
        )
        return loss, {k: float(v.detach()) for k, v in parts.items()}

    @torch.no_grad()
    def evaluate(self, module: nn.Module, ctx: EvalContext) -> dict[str, float]:
        """``val/cosine`` (mean cosine to the true answer embedding), ``val/loss``,
        ``val/mse`` and ``val/retrieval_top1`` (the nearest validation answer is the true one)."""
        answers = self.val_answers or [str(i) for i in range(self.val_a.shape[0])]
        uniq = list(dict.fromkeys(answers))
        pos_of = {a: i for i, a in enumerate(uniq)}
        first = torch.tensor([answers.index(a) for a in uniq])
        bank = self.val_a[first].float().numpy()  # (U, D)
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
            nearest = nearest_rows(pred.detach().cpu().numpy(), bank).tolist()
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


def stage_prototypes(cfg, decoder, bank: TextTable, train: TextTable, val: TextTable):
    """Retrieve-and-edit inputs of a decoder stage: each ``train`` text's nearest *other*
    ``bank`` text, each ``val`` text's nearest ``bank`` text (None, None when off)."""
    if not cfg.prototypes:
        return None, None
    if not decoder.edits:
        raise ValueError(f"{type(decoder).__name__} takes no prototypes; use a ret_edit decoder")
    row_of = {t: i for i, t in enumerate(bank.texts)}
    exclude = [row_of.get(t, -1) for t in train.texts]
    limit = int(decoder.cfg.max_proto_tokens)
    train_p = Prototypes(
        bank, _nearest(train.emb, bank.emb, exclude), limit, cfg.proto_self_rate,
        cfg.proto_pure_rate,
    )  # fmt: skip
    val_p = Prototypes(bank, _nearest(val.emb, bank.emb), limit, 0.0, 0.0)
    return train_p, val_p


def _nearest(queries: torch.Tensor, rows: torch.Tensor, exclude=None) -> torch.Tensor:
    """:func:`celltext.index.nearest_rows` of torch embeddings, as a tensor (Q,)."""
    found = nearest_rows(queries.float().numpy(), rows.float().numpy(), exclude)
    return torch.from_numpy(found)
