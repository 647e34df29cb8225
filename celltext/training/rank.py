"""Training the ranker (:mod:`celltext.inference.ranking`) beside a trained model.

``python -m celltext.training.rank --model models/default`` builds its training set from
the model's release, trains :class:`~celltext.models.ranker.RankerNet` and writes
``ranker.npz`` + ``ranker.json`` into the model folder (then refit the selector:
``python -m celltext.inference.calibrate --model models/default``). A few minutes on a
2-core CPU; deterministic for a seed.

The examples (:func:`make_examples`):

- every train pair's question re-asked in up to ``reask`` other *training* templates
  (:func:`celltext.data.reask.reask`; never a reserved ``test_paraphrase`` template); the
  positives are the candidates whose answer is the pair's answer;
- a share ``unseen_rate`` of them with every pair of their subject hidden from the bank
  (the subject is unknown: the null candidate is the positive), as calibration does;
- questions of kinds no release fact answers (:func:`celltext.data.intents.open_questions`,
  frames written by hand over release subjects): the null candidate is the positive.

Train subjects are split by a hash: ``dev_fraction`` of them are never trained on, and
their re-asked questions measure the ranker against retrieval (``dev`` in the report).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from celltext.data.intents import INTENTS, open_questions
from celltext.data.reask import reask
from celltext.hashing import sha256_file
from celltext.inference.ranking import (
    RANKER_FILE,
    RANKER_META,
    STATIC_FEATURES,
    TOP_K,
    Ranker,
    candidate_intents,
    dev_subject,
    static_features,
)
from celltext.models.ranker import RankerConfig, RankerNet, listwise_loss

log = logging.getLogger(__name__)


@dataclass
class RankTrainConfig:
    """How the ranker is trained."""

    release: str = "v2"
    seed: int = 0
    reask: int = 2  # other training phrasings per train pair
    open_per_frame: int = 40  # subjects per hand-written open-kind frame
    unseen_rate: float = 0.15  # examples whose subject is hidden from the bank
    dev_fraction: float = 0.05  # train subjects held out to measure the ranker
    k: int = TOP_K
    epochs: int = 8
    batch_size: int = 256
    lr: float = 2e-3
    intent_weight: float = 0.5


@dataclass
class Examples:
    """N ranking examples: a question, its answer (None: no fact answers it), its intent."""

    questions: list[str]
    answers: list[str | None]
    subjects: list[str]
    intents: np.ndarray  # (N,) index into INTENTS
    hide_subject: np.ndarray  # (N,) bool
    dev: np.ndarray  # (N,) bool


def make_examples(pairs, cfg: RankTrainConfig) -> Examples:
    """The examples from a release's train pairs (see the module docstring)."""
    rng = random.Random(cfg.seed)
    index = {n: i for i, n in enumerate(INTENTS)}
    qs, answers, subjects, intents, hide, dev = [], [], [], [], [], []
    for p in pairs:
        is_dev = dev_subject(p.subject, cfg.dev_fraction)
        for question in reask(p, cfg.reask, rng):
            qs.append(question)
            answers.append(p.answer)
            subjects.append(p.subject)
            intents.append(index[p.qtype])
            hide.append(rng.random() < cfg.unseen_rate)
            dev.append(is_dev)
    train_subjects = [p.subject for p in pairs if not dev_subject(p.subject, cfg.dev_fraction)]
    for question, intent in open_questions(train_subjects, cfg.open_per_frame, cfg.seed):
        qs.append(question)
        answers.append(None)
        subjects.append("")
        intents.append(index[intent])
        hide.append(False)
        dev.append(rng.random() < cfg.dev_fraction)
    return Examples(qs, answers, subjects, np.array(intents), np.array(hide), np.array(dev))


def candidates(bank, q_embs: np.ndarray, ex: Examples, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows (N, k) and question cosines (N, k); hidden subjects' rows are skipped."""
    extra = 8
    rows, cos = [], []
    subjects = bank.subjects
    for start in range(0, len(q_embs), 2048):
        r, c = bank.top_questions(q_embs[start : start + 2048], k=k + extra)
        for i in range(len(r)):
            n = start + i
            if ex.hide_subject[n]:
                keep = [j for j in range(k + extra) if subjects[r[i, j]] != ex.subjects[n]]
                keep = (keep + [j for j in range(k + extra) if j not in keep])[:k]
            else:
                keep = list(range(k))
            rows.append(r[i, keep])
            cos.append(c[i, keep])
    return np.array(rows), np.array(cos, dtype=np.float32)


def positives(bank, rows: np.ndarray, ex: Examples) -> np.ndarray:
    """(N, K + 1) bool: candidates carrying the example's answer; else the null one."""
    N, K = rows.shape
    pos = np.zeros((N, K + 1), bool)
    for n in range(N):
        if ex.answers[n] is not None and not ex.hide_subject[n]:
            pos[n, :K] = [bank.answers[r] == ex.answers[n] for r in rows[n]]
        pos[n, K] = not pos[n, :K].any()
    return pos


def ranker_config(dim: int, **sizes) -> RankerConfig:
    """The network's config for the serving ranker's feature layout."""
    return RankerConfig(
        n_static=len(STATIC_FEATURES), exact_col=STATIC_FEATURES.index("subject_exact"),
        fuzzy_col=STATIC_FEATURES.index("subject_fuzzy"), dim=dim, **sizes,
    )  # fmt: skip


def fit(net: RankerNet, data: dict[str, torch.Tensor], cfg: RankTrainConfig) -> list[float]:
    """Adam over shuffled batches; returns the mean loss per epoch."""
    torch.manual_seed(cfg.seed)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    n = len(data["q"])
    steps = cfg.epochs * ((n + cfg.batch_size - 1) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(cfg.seed)
    losses = []
    for _ in range(cfg.epochs):
        order, total = torch.randperm(n, generator=gen), 0.0
        for start in range(0, n, cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            logp, intent_logp = net(data["q"][idx], data["static"][idx], data["intents"][idx])
            loss = listwise_loss(logp, data["pos"][idx])
            loss = loss + cfg.intent_weight * torch.nn.functional.nll_loss(
                intent_logp, data["intent"][idx]
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss) * len(idx)
        losses.append(total / n)
    return losses


def top1(logp: np.ndarray, pos: np.ndarray) -> float:
    """Share of examples whose best candidate (null excluded) is a positive."""
    best = logp[:, :-1].argmax(axis=1)
    return float(pos[np.arange(len(best)), best].mean())


def train_ranker(model_dir: str | Path, cfg: RankTrainConfig | None = None) -> dict:
    """Train the ranker of the model in ``model_dir`` and write it there; returns the report."""
    from celltext.data.release import load_release
    from celltext.index import RetrievalIndex
    from celltext.inference.factory import load_predictor
    from celltext.teacher import load_teacher

    cfg, start = cfg or RankTrainConfig(), time.perf_counter()
    rel = load_release(cfg.release)
    teacher = load_teacher("minilm")
    bank = RetrievalIndex.for_release(teacher, rel, "train")
    ex = make_examples(rel.pairs("train"), cfg)
    log.info("ranker: %d examples (%d dev)", len(ex.questions), int(ex.dev.sum()))
    q_embs = np.asarray(teacher.encode(ex.questions, progress=True), np.float32)  # (N, D)
    predictor = load_predictor(str(model_dir), teacher=teacher, bank=bank, backend="torch")
    preds = np.concatenate(
        [predictor.core(q_embs[s : s + 4096]) for s in range(0, len(q_embs), 4096)]
    )  # (N, D)
    rows, cos = candidates(bank, q_embs, ex, cfg.k)
    static = static_features(ex.questions, q_embs, preds, bank, rows, cos)
    intents, pos = candidate_intents(bank, rows), positives(bank, rows, ex)
    tensors = {
        "q": torch.from_numpy(q_embs), "static": torch.from_numpy(static),
        "intents": torch.from_numpy(intents), "pos": torch.from_numpy(pos),
        "intent": torch.from_numpy(ex.intents),
    }  # fmt: skip
    train_idx = torch.from_numpy(np.flatnonzero(~ex.dev))
    net = RankerNet(ranker_config(q_embs.shape[1]))
    losses = fit(net, {k: v[train_idx] for k, v in tensors.items()}, cfg)
    out = Path(model_dir)
    weights = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    np.savez(out / RANKER_FILE, **weights)
    ranker = Ranker(weights)
    dev = ex.dev & np.array([a is not None for a in ex.answers]) & ~ex.hide_subject
    logp, _ = ranker.scores(static[dev], intents[dev], q_embs[dev])
    report = {
        "config": asdict(cfg),
        "examples": len(ex.questions),
        "dev_examples": int(dev.sum()),
        "dev_top1_ranker": top1(logp, pos[dev]),
        "dev_top1_retrieval": float(pos[dev, 0].mean()),
        "dev_in_top_k": float(pos[dev, :-1].any(axis=1).mean()),
        "epoch_losses": losses,
        "train_s": round(time.perf_counter() - start, 1),
        "release": {"version": rel.version, "sha256": rel.sha256},
        "sha256": sha256_file(out / RANKER_FILE),
    }
    (out / RANKER_META).write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="models/default")
    p.add_argument("--release", default="v2")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=RankTrainConfig.epochs)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    cfg = RankTrainConfig(release=args.release, seed=args.seed, epochs=args.epochs)
    report = train_ranker(args.model, cfg)
    print(json.dumps({k: v for k, v in report.items() if k != "config"}, indent=2))


if __name__ == "__main__":
    main()
