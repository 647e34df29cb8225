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
- a share ``wider`` of the train pairs also asked in a hand-written wording no template
  has (:data:`celltext.data.intents.RELEASE_PHRASINGS`: "What's the full form of X?");
- questions of kinds no release fact answers (:func:`celltext.data.intents.open_questions`,
  frames written by hand over release subjects): the null candidate is the positive;
- a share ``typed_rate`` of all of them rewritten as people type
  (:func:`celltext.data.typed.as_typed`: lower case, no question mark, a typo).

Train subjects are split by a hash: ``dev_fraction`` of them are never trained on, and
their re-asked questions measure the ranker against retrieval (``dev`` in the report) and
calibrate the selector. A share ``dev_templates`` of the training templates (by a hash)
is never trained on either: the selector is calibrated on dev subjects asked in those, so
it meets the ranker as test questions and users do, in phrasings it never saw.
``--ablate 3`` compares variants (:data:`ABLATIONS`: without the core's vote, without
subject matching) over three seeds on the same features.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from celltext.data.intents import INTENTS, open_questions, release_question
from celltext.data.reask import reask
from celltext.data.typed import as_typed
from celltext.inference.ranking import (
    STATIC_FEATURES,
    TOP_K,
    Ranker,
    candidate_intents,
    dev_subject,
    dev_template,
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
    wider: float = 0.3  # share of train pairs also asked in a RELEASE_PHRASINGS frame
    open_per_frame: int = 40  # subjects per hand-written open-kind frame
    unseen_rate: float = 0.15  # examples whose subject is hidden from the bank
    dev_fraction: float = 0.05  # train subjects held out to measure the ranker
    dev_templates: float = 0.25  # training templates held out (the selector's calibration)
    k: int = TOP_K
    epochs: int = 8
    batch_size: int = 256
    lr: float = 2e-3
    intent_weight: float = 0.5
    # label smoothing of both losses: the training questions come from templates whose
    # wording gives the intent away, so unsmoothed probabilities saturate at 0 and 1 and a
    # user's new wording ("What's the full form of AI?") gets a confident wrong intent
    smoothing: float = 0.1
    typed_rate: float = 0.5  # share of the questions rewritten with typing noise


@dataclass
class Examples:
    """N ranking examples: a question, its answer (None: no fact answers it), its intent."""

    questions: list[str]
    answers: list[str | None]
    subjects: list[str]
    intents: np.ndarray  # (N,) index into INTENTS
    hide_subject: np.ndarray  # (N,) bool
    dev: np.ndarray  # (N,) bool
    typed: np.ndarray  # (N,) bool: rewritten with typing noise


def make_examples(pairs, cfg: RankTrainConfig) -> Examples:
    """The examples from a release's train pairs (see the module docstring)."""
    rng = random.Random(cfg.seed)
    index = {n: i for i, n in enumerate(INTENTS)}
    qs, answers, subjects, intents, hide, dev, domains = [], [], [], [], [], [], []
    for p in pairs:
        is_dev = dev_subject(p.subject, cfg.dev_fraction)
        found = [q for t, q in reask(p, cfg.reask, rng, with_ids=True)
                 if is_dev or not dev_template(t, cfg.dev_templates)]  # fmt: skip
        if found and not is_dev and rng.random() < cfg.wider:  # wider wording, never dev
            found.append(release_question(p.qtype, p.subject, rng) or found[0])
        for question in found:
            qs.append(question)
            domains.append(p.domain)
            answers.append(p.answer)
            subjects.append(p.subject)
            intents.append(index[p.qtype])
            hide.append(rng.random() < cfg.unseen_rate)
            dev.append(is_dev)
    train_subjects = [p.subject for p in pairs if not dev_subject(p.subject, cfg.dev_fraction)]
    for question, intent in open_questions(train_subjects, cfg.open_per_frame, cfg.seed):
        qs.append(question)
        domains.append("")
        answers.append(None)
        subjects.append("")
        intents.append(index[intent])
        hide.append(False)
        dev.append(rng.random() < cfg.dev_fraction)
    typed = np.array([rng.random() < cfg.typed_rate for _ in qs], dtype=bool)
    definition = INTENTS.index("definition")
    qs = [
        as_typed(q, rng, s if i == definition else None, d) if t else q
        for q, t, s, i, d in zip(qs, typed, subjects, intents, domains, strict=True)
    ]
    return Examples(qs, answers, subjects, np.array(intents), np.array(hide), np.array(dev), typed)


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
            eps = cfg.smoothing
            loss = (1 - eps) * listwise_loss(logp, data["pos"][idx]) - eps * logp.mean()
            intent = torch.nn.functional.nll_loss(intent_logp, data["intent"][idx])
            loss = loss + cfg.intent_weight * ((1 - eps) * intent - eps * intent_logp.mean())
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        losses.append(total / n)
    return losses


def top1(logp: np.ndarray, pos: np.ndarray) -> float:
    """Share of examples whose best candidate (null excluded) is a positive."""
    best = logp[:, :-1].argmax(axis=1)
    return float(pos[np.arange(len(best)), best].mean())


ABLATIONS = {
    "full": (),
    "no_core_vote": ("core_cos",),  # the cellular core's vote cos(e, answer) zeroed
    "no_subject_match": ("subject_exact", "subject_fuzzy", "subject_longest"),
}
"""Ranker variants: the static feature columns each one zeroes (train and dev alike)."""


def prepare(model_dir: str | Path, cfg: RankTrainConfig) -> dict:
    """Examples, their teacher and core embeddings, candidates and features."""
    from celltext.data.release import load_release
    from celltext.index import RetrievalIndex
    from celltext.inference.factory import load_predictor
    from celltext.teacher import load_teacher

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
    dev = ex.dev & np.array([a is not None for a in ex.answers]) & ~ex.hide_subject
    return {
        "q": q_embs, "static": static, "intents": candidate_intents(bank, rows),
        "pos": positives(bank, rows, ex), "intent": ex.intents, "train": ~ex.dev, "dev": dev,
        "n": len(ex.questions), "release": {"version": rel.version, "sha256": rel.sha256},
        "typed": ex.typed,
    }  # fmt: skip


def train_variant(data: dict, cfg: RankTrainConfig, zeroed: tuple[str, ...] = ()):
    """(Ranker, its dev top-1, epoch losses) of one variant and seed."""
    static = data["static"].copy()
    for name in zeroed:
        static[:, :, STATIC_FEATURES.index(name)] = 0.0
    idx = np.flatnonzero(data["train"])
    tensors = {
        "q": data["q"][idx], "static": static[idx], "intents": data["intents"][idx],
        "pos": data["pos"][idx], "intent": data["intent"][idx],
    }  # fmt: skip
    net = RankerNet(ranker_config(data["q"].shape[1]))
    losses = fit(net, {k: torch.from_numpy(v) for k, v in tensors.items()}, cfg)
    ranker = Ranker({k: v.detach().numpy() for k, v in net.state_dict().items()})
    dev = data["dev"]
    logp, _ = ranker.scores(static[dev], data["intents"][dev], data["q"][dev])
    return ranker, top1(logp, data["pos"][dev]), losses, logp


def _split_top1(logp: np.ndarray, pos: np.ndarray, typed: np.ndarray) -> dict[str, dict]:
    """Top-1 of the ranker and of retrieval on the dev questions as written and as typed."""
    out = {}
    for name, mask in (("written", ~typed), ("typed", typed)):
        if mask.any():
            out[name] = {"n": int(mask.sum()), "ranker": top1(logp[mask], pos[mask]),
                         "retrieval": float(pos[mask, 0].mean())}  # fmt: skip
    return out


def train_ranker(model_dir: str | Path, cfg: RankTrainConfig | None = None) -> dict:
    """Train the ranker of the model in ``model_dir`` and write it there; returns the report."""
    cfg, start = cfg or RankTrainConfig(), time.perf_counter()
    data = prepare(model_dir, cfg)
    ranker, dev_top1, losses, dev_logp = train_variant(data, cfg)
    dev = data["dev"]
    previous = Ranker.load(model_dir)  # the ranker this one replaces, on the same questions
    if previous is not None:
        prev_logp, _ = previous.scores(data["static"][dev], data["intents"][dev], data["q"][dev])
    report = {
        "config": asdict(cfg),
        "examples": data["n"],
        "dev_examples": int(dev.sum()),
        "dev_top1_ranker": dev_top1,
        "dev_top1_retrieval": float(data["pos"][dev, 0].mean()),
        "dev_in_top_k": float(data["pos"][dev, :-1].any(axis=1).mean()),
        "dev_by_surface": _split_top1(dev_logp, data["pos"][dev], data["typed"][dev]),
        "dev_by_surface_previous": None
        if previous is None
        else _split_top1(prev_logp, data["pos"][dev], data["typed"][dev]),
        "epoch_losses": losses,
        "train_s": round(time.perf_counter() - start, 1),
        "release": data["release"],
    }
    ranker.save(model_dir, report)
    return report


def ablate(model_dir: str | Path, cfg: RankTrainConfig, seeds: int = 3) -> dict:
    """Dev top-1 of every :data:`ABLATIONS` variant over ``seeds`` seeds (mean, spread)."""
    data = prepare(model_dir, cfg)
    out = {"dev_examples": int(data["dev"].sum()),
           "dev_top1_retrieval": float(data["pos"][data["dev"], 0].mean())}  # fmt: skip
    for name, zeroed in ABLATIONS.items():
        scores = [
            train_variant(data, replace(cfg, seed=cfg.seed + s), zeroed)[1] for s in range(seeds)
        ]
        out[name] = {"dev_top1": scores, "mean": float(np.mean(scores)),
                     "std": float(np.std(scores))}  # fmt: skip
        log.info("ranker ablation %s: %s", name, out[name])
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="models/default")
    p.add_argument("--release", default="v2")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=RankTrainConfig.epochs)
    p.add_argument("--ablate", type=int, default=0, metavar="SEEDS",
                   help="Compare the variants of ABLATIONS over SEEDS seeds (writes nothing "
                   "into the model; --out FILE keeps the JSON).")  # fmt: skip
    p.add_argument(
        "--typed-rate",
        type=float,
        default=RankTrainConfig.typed_rate,
        help="share of the training questions rewritten with typing noise",
    )
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    cfg = RankTrainConfig(
        release=args.release, seed=args.seed, epochs=args.epochs, typed_rate=args.typed_rate
    )
    if args.ablate:
        report = ablate(args.model, cfg, args.ablate)
    else:
        report = train_ranker(args.model, cfg)
        report.pop("config")
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
