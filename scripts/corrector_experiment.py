"""Corrector-with-feedback experiment driver (issue 25): hypotheses, training, quick checks.

    python scripts/corrector_experiment.py hyps  --out /tmp/corrector/hyps
    python scripts/corrector_experiment.py synth --out /tmp/corrector/hyps
    python scripts/corrector_experiment.py train --out /tmp/corrector/run1
    python scripts/corrector_experiment.py check --corrector /tmp/corrector/run1 --n 100

Never reads data/heldout. Targets: validation answers (the last 300 of a fixed shuffle are
kept for tuning), release extra texts outside the decoder's training subset, and training
answers from noisy embeddings. Run with ``nice -n 19`` and ``OMP_NUM_THREADS=1``.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)
log = logging.getLogger("corrector")
TUNE = 300


def load_parts():
    from celltext.data.release import load_release
    from celltext.index import RetrievalIndex
    from celltext.inference.factory import load_predictor
    from celltext.inference.options import PredictorConfig
    from celltext.teacher import load_teacher

    rel, teacher = load_release("v2"), load_teacher()
    bank = RetrievalIndex.for_release(teacher, rel, "train")
    cfg = PredictorConfig().replace(bank={"release": "v2"})
    pred = load_predictor(
        None, fallback=False, config=cfg, teacher=teacher, bank=bank, backend="torch"
    )
    return rel, teacher, pred, cfg


def val_split(rel):
    texts = sorted(set(p.answer for p in rel.pairs("val")))
    random.Random(0).shuffle(texts)
    return texts[:-TUNE], texts[-TUNE:]


def unseen_texts(rel):
    """(extra texts the shipped decoder never trained on, shuffled; the train answers)."""
    from celltext.training.data import _stable_subset

    used = set(_stable_subset(list(rel.extra_texts()), 5000, lambda t: t))
    seen = used | set(p.answer for p in rel.pairs("train"))
    extra = [t for t in rel.extra_texts() if t not in seen]
    random.Random(1).shuffle(extra)
    return extra, sorted(set(p.answer for p in rel.pairs("train")))


def cmd_hyps(a):
    from celltext.training.correction import build_hypotheses, save_hypotheses

    rel, teacher, pred, cfg = load_parts()
    val_train, val_tune = val_split(rel)
    extra, train_ans = unseen_texts(rel)
    random.Random(2).shuffle(train_ans)
    sets = {
        "val_tune": (val_tune, 0.0),
        "val": (val_train, 0.0),
        "extra": (extra[: a.n_extra], 0.0),
        "noisy": (train_ans[: a.n_noisy], a.noise),
    }
    for name, (texts, noise) in sets.items():
        if (Path(a.out) / name / "hypotheses.npz").exists():
            continue
        t0 = time.perf_counter()
        embs = np.asarray(teacher.encode(texts, cache=False), np.float32)
        h = build_hypotheses(pred.decoding, cfg.decoding, texts, embs, k=a.k, noise=noise)
        save_hypotheses(Path(a.out) / name, {name: h})
        best = np.mean([c.max() for c in h["cos"]])
        log.info(
            "%s: %d targets, best-candidate cos %.3f, %.0f s",
            name,
            len(texts),
            best,
            time.perf_counter() - t0,
        )


def cmd_train(a):
    from celltext.paths import REPO_ROOT
    from celltext.registry.checkpoint import load_checkpoint
    from celltext.training.correction import (
        CorrectorArgs,
        load_hypotheses,
        make_examples,
        train_corrector,
    )

    ckpt = load_checkpoint(REPO_ROOT / "models" / "default")
    tok = ckpt.tokenizer
    sets = {}
    for name in a.sets.split(",") + ["val_tune"]:
        sets.update(load_hypotheses(Path(a.hyps) / name))
    train = make_examples([sets[n] for n in a.sets.split(",")], tok, extra_hyps=a.extra_hyps)
    val = make_examples([sets["val_tune"]], tok, extra_hyps=0, seed=1)
    log.info("examples: train %d, val %d", len(train), len(val))
    args = CorrectorArgs(
        steps=a.steps,
        batch_size=a.batch_size,
        lr=a.lr,
        base_lr=a.base_lr,
        n_feedback=a.n_feedback,
        eval_every=a.eval_every,
    )
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    from celltext.models.decoders.corrector import RETCorrector

    init = RETCorrector.load(a.init) if a.init else ckpt.model.decoder
    model, hist = train_corrector(init, train, val, args, out / "train_log.jsonl")
    model.save(out)
    from dataclasses import asdict

    (out / "train_summary.json").write_text(
        json.dumps(
            {
                "args": asdict(args),
                "sets": a.sets,
                "init": a.init or "models/default decoder",
                "extra_hyps": a.extra_hyps,
                "n_train": len(train),
                "n_val": len(val),
                "train_s": round(time.perf_counter() - t0, 1),
                "history": hist,
                "command": " ".join(sys.argv),
            },
            indent=1,
        )
    )


def cmd_check(a):
    """Search mode vs correction on the tuning validation answers (never held-out data)."""
    from celltext import metrics as M
    from celltext.inference.correction import CorrectionConfig, Corrector
    from celltext.models.decoders.corrector import RETCorrector

    rel, teacher, pred, cfg = load_parts()
    _, tune = val_split(rel)
    tune = tune[: a.n]
    embs = np.asarray(teacher.encode(tune, cache=False), np.float32)
    if a.corrector == "editor":  # ablation: the shipped decoder re-edits, no feedback
        model = RETCorrector.from_editor(pred.decoding.backend.system.decoder)
        corr = Corrector(pred.decoding, model, feedback=False)
    else:
        corr = Corrector(pred.decoding, RETCorrector.load(a.corrector))
    res = {"corrector": a.corrector, "n": len(tune)}
    for steps, beam, samples in [tuple(map(int, v.split(":"))) for v in a.grid.split(",")]:
        cc = CorrectionConfig(steps=steps, beam=beam, samples=samples, prototypes=a.k)
        t0 = time.perf_counter()
        out = corr.texts(embs, cfg.decoding, cc)
        dt = (time.perf_counter() - t0) / len(tune) * 1000
        hy = np.asarray(teacher.encode(out, cache=False), np.float32)
        cos = float(np.mean(np.sum(hy * embs, 1)))
        r = {
            "cos": round(cos, 4),
            "bleu": round(M.bleu(out, tune), 4),
            "ms_per_answer": round(dt, 1),
        }
        res[f"s{steps}_b{beam}_x{samples}"] = r
        log.info("steps %d beam %d samples %d: %s", steps, beam, samples, r)
    res["examples"] = [{"ref": r, "out": o} for r, o in list(zip(tune, out, strict=True))[:8]]
    Path(a.out).write_text(json.dumps(res, indent=1))


def cmd_synth(a):
    """Near-miss hypotheses (word edits of the target) for unseen extra texts and val answers."""
    from celltext.data.release import load_release
    from celltext.teacher import load_teacher
    from celltext.training.correction import save_hypotheses, synthetic_hypotheses

    rel, teacher = load_release("v2"), load_teacher()
    val_train, _ = val_split(rel)
    extra, train_ans = unseen_texts(rel)
    vocab = sorted({w for t in train_ans[:20000] + extra[:5000] for w in t.split()})
    targets = extra[3500 : 3500 + a.n_extra] + val_train
    t0 = time.perf_counter()
    h = synthetic_hypotheses(teacher, targets, vocab, seed=a.seed)
    save_hypotheses(Path(a.out) / a.name, {a.name: h})
    log.info(
        "%s: %d targets, cos %.3f, %.0f s",
        a.name,
        len(h["targets"]),
        np.mean([c.max() for c in h["cos"]]),
        time.perf_counter() - t0,
    )


def cmd_onpolicy(a):
    """Second-round hypotheses: the corrector's own rewrites (greedy and one sample) of the
    search-best hypothesis of each training target."""
    from celltext.inference.correction import Corrector
    from celltext.models.decoders.corrector import RETCorrector
    from celltext.training.correction import load_hypotheses, save_hypotheses

    rel, teacher, pred, cfg = load_parts()
    corr = Corrector(pred.decoding, RETCorrector.load(a.corrector))
    gen = cfg.decoding.generation
    sample = gen.replace(do_sample=True, temperature=0.7, top_p=0.95)
    out = {"targets": [], "e": [], "hyps": [], "hyp_emb": [], "cos": []}
    t0 = time.perf_counter()
    for name in a.sets.split(","):
        h = load_hypotheses(Path(a.hyps) / name)[name]
        best = [int(np.argmax(c)) for c in h["cos"]]
        hyp = [h["hyps"][i][j] for i, j in enumerate(best)]
        he = np.stack([h["hyp_emb"][i][j] for i, j in enumerate(best)])
        for s in range(0, len(hyp), 64):
            sl = slice(s, s + 64)
            g = corr.rewrite(h["e"][sl], hyp[sl], he[sl], gen)
            r = corr.rewrite(h["e"][sl], hyp[sl], he[sl], sample, np.random.default_rng(s))
            for i, (t, x, y) in enumerate(zip(h["targets"][sl], g, r, strict=True)):
                texts = [u for u in dict.fromkeys([x, y]) if u.strip() and u != t]
                if not texts:
                    continue
                emb = np.asarray(teacher.encode(texts, cache=False), np.float32)
                out["targets"].append(t)
                out["e"].append(h["e"][s + i])
                out["hyps"].append(texts)
                out["hyp_emb"].append(emb)
                out["cos"].append(emb @ h["e"][s + i])
            log.info("%s: %d / %d", name, min(s + 64, len(hyp)), len(hyp))
    out["e"] = np.stack(out["e"])
    save_hypotheses(Path(a.hyps) / "onpolicy", {"onpolicy": out})
    log.info("onpolicy: %d targets, %.0f s", len(out["targets"]), time.perf_counter() - t0)


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("hyps")
    h.add_argument("--out", default="/tmp/corrector/hyps")
    h.add_argument("--k", type=int, default=3)
    h.add_argument("--n-extra", type=int, default=3500)
    h.add_argument("--n-noisy", type=int, default=800)
    h.add_argument("--noise", type=float, default=0.03)
    y = sub.add_parser("synth")
    y.add_argument("--out", default="/tmp/corrector/hyps")
    y.add_argument("--name", default="synth")
    y.add_argument("--n-extra", type=int, default=10000)
    y.add_argument("--seed", type=int, default=0)
    o = sub.add_parser("onpolicy")
    o.add_argument("--hyps", default="/tmp/corrector/hyps")
    o.add_argument("--sets", default="val,extra")
    o.add_argument("--corrector", required=True)
    t = sub.add_parser("train")
    t.add_argument("--init", default="", help="start from this corrector (default: the editor)")
    t.add_argument("--hyps", default="/tmp/corrector/hyps")
    t.add_argument("--sets", default="val,extra,noisy")
    t.add_argument("--out", required=True)
    t.add_argument("--steps", type=int, default=400)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=3e-4)
    t.add_argument("--base-lr", type=float, default=1e-4)
    t.add_argument("--n-feedback", type=int, default=8)
    t.add_argument("--extra-hyps", type=int, default=2)
    t.add_argument("--eval-every", type=int, default=100)
    c = sub.add_parser("check")
    c.add_argument("--corrector", required=True)
    c.add_argument("--n", type=int, default=100)
    c.add_argument("--k", type=int, default=1)
    c.add_argument("--grid", default="0:1:0,1:1:0,3:2:0")
    c.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    {
        "hyps": cmd_hyps,
        "synth": cmd_synth,
        "onpolicy": cmd_onpolicy,
        "train": cmd_train,
        "check": cmd_check,
    }[a.cmd](a)


def second_encoder(argv=None):
    """Cosine of decoded texts to their references under all-mpnet-base-v2 (a second
    encoder), for search and correct modes: ``python scripts/corrector_experiment.py
    mpnet --corrector DIR --out FILE`` (held-out sentences + 200 test_unseen answers)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--corrector", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--grid", default="3:2:0,3:2:1")
    a = ap.parse_args(argv)
    from celltext.data.heldout import load_heldout
    from celltext.evaluation.evaluate import select_pairs
    from celltext.index import unit_rows
    from celltext.inference.correction import Corrector
    from celltext.models.decoders.corrector import RETCorrector
    from celltext.teacher import load_teacher

    rel, teacher, pred, cfg = load_parts()
    mpnet = load_teacher("mpnet")
    corr = Corrector(pred.decoding, RETCorrector.load(a.corrector))
    sets = {
        "heldout_sentences": [p.answer for p in load_heldout("heldout_sentences")],
        "test_unseen_200": [p.answer for p in select_pairs(rel.pairs("test_unseen"), 200)],
    }
    res = {"corrector": a.corrector, "second_encoder": mpnet.id}
    for name, refs in sets.items():
        e = np.asarray(teacher.encode(refs, cache=False), np.float32)
        r2 = unit_rows(mpnet.encode(refs, cache=False))
        outs = {"search": pred.decoding.texts(e, cfg.decoding, "search")}
        for g in a.grid.split(","):
            st, bm, sm = map(int, g.split(":"))
            cc = cfg.decoding.correction.replace(steps=st, beam=bm, samples=sm)
            outs[f"correct_s{st}b{bm}x{sm}"] = corr.texts(e, cfg.decoding, cc)
        res[name] = {}
        for k, texts in outs.items():
            h1 = unit_rows(teacher.encode(texts, cache=False))
            h2 = unit_rows(mpnet.encode(texts, cache=False))
            res[name][k] = {
                "teacher_preservation": round(float(np.mean(np.sum(h1 * e, 1))), 4),
                "mpnet_cosine_to_reference": round(float(np.mean(np.sum(h2 * r2, 1))), 4),
            }
            log.info("%s %s %s", name, k, res[name][k])
    Path(a.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    if sys.argv[1:2] == ["mpnet"]:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
        second_encoder(sys.argv[2:])
    else:
        main()
