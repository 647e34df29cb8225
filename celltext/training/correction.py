"""Training a corrector with feedback (``ret_correct``, vec2text: Morris et al. 2023).

Two steps, each a function (``scripts/corrector_experiment.py`` runs them: its ``hyps`` and
``train`` subcommands):

1. :func:`build_hypotheses` writes what the *shipped* decoder actually produces for target
   texts it never saw (validation answers, release extra texts outside the decoder's
   training subset) and for training answers from noisy embeddings: the plain greedy
   decode, the k nearest training-bank answers (the target's own text excluded) and the
   decoder's edits of each, with their teacher embeddings and cosines to the target.
2. :func:`train_corrector` fine-tunes a :class:`~celltext.models.decoders.corrector.RETCorrector`
   (shared weights from the shipped decoder) for one correction step per example:
   (e, hypothesis tokens, e_hat = teacher(hypothesis)) -> target text, teacher-forced
   cross-entropy. Hypotheses per target: the search-mode best (where inference starts) and
   up to ``extra_hyps`` others, never the target itself.

Shapes: N targets, M hypotheses, D teacher dim, L tokens.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from celltext.models.decoders.corrector import RETCorrector
from celltext.training.tasks import proto_batch

log = logging.getLogger(__name__)
HYPS_JSON, HYPS_NPZ = "hypotheses.json", "hypotheses.npz"


# -- 1. hypotheses ------------------------------------------------------------------------------
def _protos(bank, embs: np.ndarray, targets: list[str], k: int) -> list[list[str]]:
    """Per target, the ``k`` nearest distinct bank answers other than the target itself."""
    out = []
    for hits, t in zip(bank.search(embs, k=k + 4, side="answer"), targets, strict=True):
        seen = list(dict.fromkeys(h.text for h in hits if h.text != t))
        out.append((seen + seen[-1:] * k)[:k])
    return out


def build_hypotheses(decoding, options, targets: list[str], embs: np.ndarray, k: int = 3,
                     batch: int = 64, noise: float = 0.0, seed: int = 0) -> dict:  # fmt: skip
    """The shipped decoder's candidate texts for ``targets`` decoded from ``embs`` (N, D)
    (noised with ``noise`` per dimension, then re-normalised, when > 0; the noisy vector is
    the conditioning input ``e`` then). Returns ``{"targets", "e" (N, D), "hyps": [[text,
    ...] per target], "hyp_emb": list of (C, D), "cos": list of (C,)}``."""
    rng = np.random.default_rng(seed)
    e_all = np.asarray(embs, np.float32)
    if noise > 0:
        e_all = e_all + noise * rng.standard_normal(e_all.shape).astype(np.float32)
        e_all /= np.linalg.norm(e_all, axis=1, keepdims=True)
    hyps, hyp_emb, cos = [], [], []
    for s in range(0, len(targets), batch):
        e, tg = e_all[s : s + batch], targets[s : s + batch]
        protos = _protos(decoding.bank, e, tg, k)  # (b, k)
        cols = [decoding.tokens_to_texts(e, options.generation)]  # plain greedy
        cols += [[p[j] for p in protos] for j in range(k)]
        cols += [decoding.generate(e, options, [p[j] for p in protos]) for j in range(k)]
        for i in range(len(tg)):
            texts = list(dict.fromkeys(c[i] for c in cols if c[i].strip()))
            he = np.asarray(decoding.teacher.encode(texts, cache=False), np.float32)  # (C, D)
            hyps.append(texts)
            hyp_emb.append(he)
            cos.append(he @ e[i])
        log.info("hypotheses: %d / %d", min(s + batch, len(targets)), len(targets))
    return {"targets": list(targets), "e": e_all, "hyps": hyps, "hyp_emb": hyp_emb, "cos": cos}


def save_hypotheses(out: Path, parts: dict[str, dict]) -> None:
    """Write named hypothesis sets (:func:`build_hypotheses` outputs) to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    meta, arrays = {}, {}
    for name, h in parts.items():
        meta[name] = {"targets": h["targets"], "hyps": h["hyps"]}
        arrays[f"{name}/e"] = h["e"]
        arrays[f"{name}/hyp_emb"] = (
            np.concatenate(h["hyp_emb"])
            if h["hyp_emb"]
            else np.zeros((0, h["e"].shape[1]), np.float32)
        )
    (out / HYPS_JSON).write_text(json.dumps(meta))
    np.savez(out / HYPS_NPZ, **arrays)


def load_hypotheses(folder: Path) -> dict[str, dict]:
    """The sets :func:`save_hypotheses` wrote, with per-target ``hyp_emb`` and ``cos``."""
    meta = json.loads((folder / HYPS_JSON).read_text())
    arrays = np.load(folder / HYPS_NPZ)
    out = {}
    for name, m in meta.items():
        e, flat = arrays[f"{name}/e"], arrays[f"{name}/hyp_emb"]
        cuts = np.cumsum([0] + [len(h) for h in m["hyps"]])
        he = [flat[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
        cos = [x @ e[i] for i, x in enumerate(he)]
        out[name] = {**m, "e": e, "hyp_emb": he, "cos": cos}
    return out


def corrupt(text: str, vocab: list[str], rng: random.Random, max_ops: int = 3) -> str:
    """A near miss of ``text``: 1..``max_ops`` word edits (drop, replace with a ``vocab``
    word, swap neighbours, insert a ``vocab`` word), as a hypothesis one step from it."""
    words = text.split()
    for _ in range(rng.randint(1, max_ops)):
        if len(words) < 2:
            break
        op, i = rng.random(), rng.randrange(len(words))
        if op < 0.3:
            del words[i]
        elif op < 0.65:
            words[i] = rng.choice(vocab)
        elif op < 0.8 and i + 1 < len(words):
            words[i], words[i + 1] = words[i + 1], words[i]
        else:
            words.insert(i, rng.choice(vocab))
    return " ".join(words)


def synthetic_hypotheses(teacher, targets: list[str], vocab: list[str], seed: int = 0) -> dict:
    """:func:`build_hypotheses`' format with one hypothesis per target made by
    :func:`corrupt` (the exact target embeddings as ``e``)."""
    rng = random.Random(seed)
    hyps = [corrupt(t, vocab, rng) for t in targets]
    keep = [i for i, (h, t) in enumerate(zip(hyps, targets, strict=True)) if h != t and h.strip()]
    targets, hyps = [targets[i] for i in keep], [hyps[i] for i in keep]
    e = np.asarray(teacher.encode(targets, cache=False), np.float32)
    he = np.asarray(teacher.encode(hyps, cache=False), np.float32)
    return {"targets": targets, "e": e, "hyps": [[h] for h in hyps],
            "hyp_emb": [he[i : i + 1] for i in range(len(hyps))],
            "cos": [he[i : i + 1] @ e[i] for i in range(len(hyps))]}  # fmt: skip


# -- 2. examples -------------------------------------------------------------------------------
@dataclass
class Examples:
    """One correction step per row: condition ``e`` (M, D) and ``hyp_emb`` (M, D),
    hypothesis token ids and target token ids (lists without bos/eos)."""

    e: torch.Tensor
    hyp_emb: torch.Tensor
    hyp_ids: list[list[int]]
    target_ids: list[list[int]]

    def __len__(self) -> int:
        return len(self.hyp_ids)


def make_examples(sets: list[dict], tokenizer, extra_hyps: int = 2, seed: int = 0,
                  max_tokens: int = 46) -> Examples:  # fmt: skip
    """Per target: the closest hypothesis by teacher cosine (search mode's answer) and up to
    ``extra_hyps`` random others; hypotheses equal to the target are skipped."""
    rng = random.Random(seed)
    e, he, hyp_t, tgt_t = [], [], [], []
    for h in sets:
        for i, target in enumerate(h["targets"]):
            order = np.argsort(-h["cos"][i]).tolist()
            picks = [order[0]] + rng.sample(order[1:], min(extra_hyps, len(order) - 1))
            for j in picks:
                if h["hyps"][i][j] == target:
                    continue
                e.append(h["e"][i])
                he.append(h["hyp_emb"][i][j])
                hyp_t.append(h["hyps"][i][j])
                tgt_t.append(target)
    enc = lambda texts: [r[:max_tokens] for r in tokenizer.encode_batch(texts)]  # noqa: E731
    return Examples(torch.from_numpy(np.stack(e)), torch.from_numpy(np.stack(he)),
                    enc(hyp_t), enc(tgt_t))  # fmt: skip


def _batch(ex: Examples, idx: list[int], cfg, max_proto: int):
    """Tensors of rows ``idx``: e, hyp_emb (B, D), proto ids (B, P), input ids (B, L)."""
    rows = [[cfg.bos_id, *ex.target_ids[i], cfg.eos_id] for i in idx]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), cfg.pad_id, dtype=torch.long)  # (B, L)
    for r, row in enumerate(rows):
        ids[r, : len(row)] = torch.tensor(row)
    protos = proto_batch([torch.tensor(ex.hyp_ids[i][:max_proto], dtype=torch.long) for i in idx])
    return ex.e[idx], ex.hyp_emb[idx], protos, ids


def example_loss(model: RETCorrector, ex: Examples, idx: list[int]) -> tuple[torch.Tensor, int]:
    """Mean teacher-forced cross-entropy of rows ``idx`` (and their target token count)."""
    e, he, protos, ids = _batch(ex, idx, model.cfg, model.cfg.max_proto_tokens)
    logits = model(e, ids[:, :-1], proto_ids=protos, hyp_emb=he)  # (B, L-1, V)
    targets = ids[:, 1:].masked_fill(ids[:, 1:] == model.cfg.pad_id, -100)
    loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100)
    return loss, int((targets != -100).sum())


@dataclass
class CorrectorArgs:
    """Fine-tuning options of :func:`train_corrector`."""

    steps: int = 400
    """Optimiser steps."""
    batch_size: int = 32
    lr: float = 3e-4
    """Peak learning rate of the new feedback MLP."""
    base_lr: float = 1e-4
    """Peak learning rate of the weights shared with the shipped decoder."""
    warmup: int = 30
    weight_decay: float = 0.01
    n_feedback: int = 8
    seed: int = 0
    eval_every: int = 100


def train_corrector(editor, train: Examples, val: Examples, args: CorrectorArgs,
                    log_file: Path | None = None) -> tuple[RETCorrector, list[dict]]:  # fmt: skip
    """Fine-tune a corrector started from ``editor`` (a ``ret_edit`` decoder) on ``train``;
    teacher-forced loss on ``val`` every ``eval_every`` steps. Returns it and the log."""
    torch.manual_seed(args.seed)
    model = RETCorrector.from_editor(editor, n_feedback=args.n_feedback).train()
    new = [p for n, p in model.named_parameters() if n.startswith("feedback.")]
    old = [p for n, p in model.named_parameters() if not n.startswith("feedback.")]
    opt = torch.optim.AdamW(
        [{"params": new, "lr": args.lr}, {"params": old, "lr": args.base_lr}],
        weight_decay=args.weight_decay, betas=(0.9, 0.98),
    )  # fmt: skip
    peaks = [args.lr, args.base_lr]
    rng = random.Random(args.seed)
    order: list[int] = []
    history, t0 = [], time.perf_counter()
    for step in range(1, args.steps + 1):
        scale = min(1.0, step / args.warmup) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for g, peak in zip(opt.param_groups, peaks, strict=True):
            g["lr"] = peak * max(scale, 0.05)
        if len(order) < args.batch_size:
            order += rng.sample(range(len(train)), len(train))
        idx, order = order[: args.batch_size], order[args.batch_size :]
        loss, _ = example_loss(model, train, idx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % args.eval_every == 0 or step == args.steps:
            rec = {"step": step, "train/loss": float(loss), "val/loss": val_loss(model, val),
                   "elapsed_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
            history.append(rec)
            log.info("%s", rec)
            if log_file is not None:
                with log_file.open("a") as fh:
                    fh.write(json.dumps(rec) + "\n")
            model.train()
    return model.eval(), history


@torch.no_grad()
def val_loss(model: RETCorrector, ex: Examples, batch: int = 64) -> float:
    """Token-weighted teacher-forced cross-entropy over ``ex``."""
    model.eval()
    total = count = 0.0
    for s in range(0, len(ex), batch):
        loss, n = example_loss(model, ex, list(range(s, min(s + batch, len(ex)))))
        total, count = total + float(loss) * n, count + n
    return total / max(count, 1.0)
