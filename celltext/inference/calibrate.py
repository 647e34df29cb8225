"""Fitting the answer selector and its confidence on ``val`` (never on a test split).

The calibration set is derived from the release's ``train`` and ``val`` splits only:

- **seen**: a seeded sample of ``train`` facts re-asked with *another* training template
  of the same question type (a known fact in new words, as ``test_paraphrase`` asks, but
  never with its reserved templates);
- **unseen**: a share of those questions answered with their own subject hidden from the
  phrase bank, which imitates a subject the model was not taught (``test_unseen``);
- **val**: ``val`` questions as they are (a known subject, a fact the bank lacks);
- **out of scope**: re-asked questions whose subject is replaced by a made-up word
  (seeded syllables), which no candidate can answer;
- **open**: questions of kinds no release fact answers ("Who invented X?", "What causes
  X?", :mod:`celltext.data.intents`), about release subjects.

With a ranker, only train subjects it never learned from (its ``dev`` subjects) are
re-asked, in training templates it never learned from (its ``dev`` templates), so the
selector sees the ranker as it is on new questions in new words.

For each question every candidate of :mod:`celltext.inference.candidates` is built exactly as
serving builds it and labelled correct when its teacher cosine to the reference is
>= :data:`~celltext.inference.selector.CORRECT_AT`;
:func:`~celltext.inference.selector.fit_selector` fits the per-kind probabilities, the Platt
scaling and the abstention threshold.

    python -m celltext.inference.calibrate --model models/default      # writes selector.json
    python -m celltext.inference.calibrate --teacher int8   # selector_int8.json (served export)

``--threshold-on dev_natural`` then moves the abstention threshold to the lowest at which at
most ``--served-risk`` (default 5%) of the answers served to the hand-written natural
questions of ``data/dev`` are wrong (:func:`threshold_on_natural`): the selector's
probabilities come from the calibration set, the threshold from questions typed as people
type. The held-out sets are refused.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from celltext.index import unit_rows
from celltext.inference.export_files import SELECTOR_FILES, TEACHER_PRECISIONS
from celltext.inference.ranking import dev_subject, dev_template
from celltext.inference.selector import (
    CORRECT_AT,
    AnswerSelector,
    expected_calibration_error,
    fit_selector,
    risk_coverage,
)
from celltext.paths import DEFAULT_RELEASE

PARTS = ("seen", "casual", "unseen", "val", "out_of_scope", "open")
IN_SCOPE = ("seen", "casual")  # known facts: what the in-scope abstention rule counts

_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"] + ["qu", "xo", "wy"]


def pseudo_word(rng: np.random.Generator) -> str:
    """A made-up word of 2-4 syllables (no release subject looks like it)."""
    return "".join(rng.choice(_SYLLABLES, size=int(rng.integers(2, 5)))) + str(
        rng.choice(["", "ix", "or", "um", "el"])
    )


def reask(pair, rng: np.random.Generator, keep=None) -> str | None:
    """``pair``'s question in another (non-reserved) template of its type and style (one
    ``keep(template_id)`` accepts), or None when its template is unknown or has none."""
    from celltext.data.reask import reask as other_phrasings

    found = other_phrasings(pair, 1, random.Random(int(rng.integers(2**31))), keep=keep)
    return found[0] if found else None


def calibration_set(
    train, val, n_seen: int = 1200, n_val: int = 400, unseen_rate: float = 0.4,
    oos_rate: float = 0.4, seed: int = 0, open_rate: float = 0.15, keep=None,
    casual_rate: float = 0.0, typed_rate: float = 0.0,
):  # fmt: skip
    """Rows ``(question, reference or None, hidden subject or None, part)``; ``open_rate``:
    questions of kinds no release fact answers ("Who invented X?", part ``open``), per seen
    question; ``casual_rate``: the seen fact asked again as people type
    (:data:`~celltext.data.intents.CASUAL_PHRASINGS`, part ``casual``), per seen question;
    ``typed_rate``: the share of all rows rewritten with typing noise
    (:func:`~celltext.data.typed.as_typed`)."""
    from celltext.data.intents import casual_question, open_questions
    from celltext.data.typed import as_typed

    rng = np.random.default_rng(seed)
    typed = random.Random(seed + 2)
    rows, seen, defined = [], 0, {}
    for i in rng.permutation(len(train)):
        p = train[int(i)]
        question = reask(p, rng, keep)
        if question is None:
            continue
        rows.append((question, p.answer, None, "seen"))
        if getattr(p, "qtype", "") == "definition":  # typed, it may become the bare subject
            defined[question] = (p.subject, getattr(p, "domain", ""))
        seen += 1
        if rng.random() < casual_rate and (casual := casual_question(p.qtype, p.subject, typed)):
            rows.append((casual, p.answer, None, "casual"))
        if rng.random() < unseen_rate:
            rows.append((question, p.answer, p.subject, "unseen"))
        if rng.random() < oos_rate and p.subject.lower() in question.lower():
            fake = re.sub(re.escape(p.subject), pseudo_word(rng), question, flags=re.I)
            rows.append((fake, None, None, "out_of_scope"))
        if seen >= n_seen:
            break
    for i in rng.permutation(len(val))[:n_val]:
        rows.append((val[int(i)].question, val[int(i)].answer, None, "val"))
    subjects = [r[2] or "" for r in rows if r[3] == "unseen"] or [p.subject for p in train[:50]]
    pool = open_questions(subjects, per_frame=1, seed=seed + 1)
    for i in rng.permutation(len(pool))[: int(open_rate * seen)]:
        rows.append((pool[int(i)][0], None, None, "open"))
    noise = random.Random(seed + 3)
    return [
        (as_typed(r[0], noise, *defined.get(r[0], (None, ""))), *r[1:])
        if noise.random() < typed_rate
        else r
        for r in rows
    ]


def candidate_table(predictor, rows, batch_size: int = 64) -> dict[str, Any]:
    """Feature matrices and correctness per kind for calibration ``rows``."""
    bank = predictor.bank
    subjects = np.array(bank.subjects or [""] * len(bank), dtype=object)
    mats: dict[str, list[np.ndarray]] = {}
    hits: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        questions = predictor.read([r[0] for r in chunk])  # as served: typos corrected
        q = predictor.embed(questions)  # (b, D)
        preds = predictor.core(q)  # (b, D)
        exclude = np.stack([subjects == (r[2] or "\0") for r in chunk])  # (b, N)
        c = predictor.candidates(questions, q, preds, exclude=exclude)
        if c.failure is not None:
            raise RuntimeError(f"calibration needs the model's answers: {c.failure}")
        found, m, kind, embs = c.found, c.matrices, c.model_kind, c.model_embs
        refs = [r[1] or "" for r in chunk]
        ref_embs = unit_rows(predictor.embed(refs))  # (b, D)
        known = np.array([r[1] is not None for r in chunk])
        emb_of = {
            "retrieved": bank.answer_embs[found.retrieved],
            "nearest": bank.answer_embs[found.nearest],
            kind: embs,
        }
        for k in c.texts:
            sim = np.sum(unit_rows(emb_of[k]) * ref_embs, axis=1)
            mats.setdefault(k, []).append(m[k])
            hits.setdefault(k, []).append(((sim >= CORRECT_AT) & known).astype(float))
    return {
        "matrices": {k: np.concatenate(v) for k, v in mats.items()},
        "correct": {k: np.concatenate(v) for k, v in hits.items()},
        "seen": np.array([r[3] in IN_SCOPE for r in rows]),
        "part": np.array([r[3] for r in rows]),
    }


def calibrate(
    predictor, train, val, max_in_scope_abstention: float = 0.03, seed: int = 0,
    max_risk: float | None = None, casual_rate: float = 0.0, typed_rate: float = 0.0,
    **sizes,
):  # fmt: skip
    """Fit a selector on calibration rows from ``train`` and ``val`` pairs; returns it and
    a report. ``max_risk``: the threshold rule (:func:`~celltext.inference.selector.
    fit_selector`; None: at most ``max_in_scope_abstention`` of the known facts abstain);
    ``casual_rate``: typed rewordings per seen question; ``typed_rate``: the share of the
    questions rewritten with typing noise; ``sizes``: ``n_seen``, ``n_val``
    of :func:`calibration_set`."""
    if predictor.bank is None or predictor.retrieval_only:
        raise ValueError("calibration needs a generative model with a phrase bank")
    keep = None
    if predictor.ranker is not None:  # never calibrate on questions the ranker learned
        ranker = predictor.ranker
        train = [p for p in train if dev_subject(p.subject, ranker.dev_fraction)]
        if ranker.dev_templates > 0:
            keep = functools.partial(dev_template, fraction=ranker.dev_templates)
    rows = calibration_set(
        train, val, seed=seed, keep=keep, casual_rate=casual_rate, typed_rate=typed_rate, **sizes
    )
    # the selector scores the served candidates: no reranking, whatever the caller's config
    table = candidate_table(predictor.with_config(decoding={"rerank": {"candidates": 0}}), rows)
    sel = fit_selector(
        table["matrices"],
        table["correct"],
        table["seen"],
        max_in_scope_abstention,
        seed,
        max_risk,
    )
    kinds, conf = sel.choose(table["matrices"])
    hit = np.array([table["correct"][k][i] for i, k in enumerate(kinds)])
    abstain = conf < sel.abstain_below
    part = table["part"]
    report = {
        "questions": {p: int((part == p).sum()) for p in PARTS},
        "ece": expected_calibration_error(conf, hit),
        "ece_per_part": {
            p: expected_calibration_error(conf[part == p], hit[part == p])
            for p in PARTS
            if (part == p).any()
        },  # fmt: skip
        "threshold_rule": "in-scope abstention" if max_risk is None else f"risk <= {max_risk}",
        "served": {
            "coverage": float((~abstain).mean()),
            "risk": float(1 - hit[~abstain].mean()) if (~abstain).any() else 0.0,
        },
        "risk_coverage": _curve_points(conf, hit),
        "accuracy_of_chosen": float(hit.mean()),
        "abstain_below": sel.abstain_below,
        "abstention": {p: float(abstain[part == p].mean()) for p in set(part.tolist())},
        "chosen": {k: int(sum(c == k for c in kinds)) for k in table["matrices"]},
        "oracle_accuracy": float(np.max(np.stack(list(table["correct"].values())), 0).mean()),
    }
    sel.fitted_on = {"splits": ["train (re-asked)", "val"], **report}
    return sel, report


def threshold_on_natural(
    predictor, selector: AnswerSelector, rows, max_risk: float
) -> tuple[float, dict[str, Any]]:
    """The lowest abstention threshold at which at most ``max_risk`` of the answers
    ``predictor`` with ``selector`` serves to the natural questions ``rows`` are wrong
    (``dev_natural``: typed as people type, answerable or not; a served answer to an
    unanswerable question is wrong), and a report with that set's risk-coverage curve."""
    from celltext.inference.predictor import Predictor

    p = predictor
    served = Predictor(p.teacher, p.backend, p.bank, p.config, p.info, selector, p.ranker)
    answers = [a for s in range(0, len(rows), 64) for a in served.answer([r.question for r in
               rows[s : s + 64]])]  # fmt: skip
    guess = unit_rows(served.embed([a.best_guess or a.answer for a in answers]))  # (N, D)
    refs = unit_rows(served.embed([r.answer or "-" for r in rows]))  # (N, D)
    answerable = np.array([r.answerable for r in rows])
    hit = (np.sum(guess * refs, axis=1) >= CORRECT_AT) & answerable
    conf = np.array([a.confidence for a in answers])
    curve = risk_coverage(conf, hit)
    ok = [c["threshold"] for c in curve if c["risk"] <= max_risk]
    threshold = float(min(ok)) if ok else 1.0
    at = conf >= threshold
    return threshold, {
        "questions": len(rows), "answerable": int(answerable.sum()), "max_risk": max_risk,
        "abstain_below": threshold, "coverage": float(at.mean()),
        "risk": float((at & ~hit).sum() / max(at.sum(), 1)),
        "answerable_correct": float((at & hit).sum() / max(answerable.sum(), 1)),
        "unanswerable_served": float((at & ~answerable).sum() / max((~answerable).sum(), 1)),
        "best_guess_correct": float(hit.sum() / max(answerable.sum(), 1)),
        "risk_coverage": _curve_points(conf, hit),
    }  # fmt: skip


def _curve_points(conf: np.ndarray, hit: np.ndarray, n: int = 21) -> list[dict[str, float]]:
    """The risk-coverage curve at ``n`` evenly spaced thresholds (for the report)."""
    curve = risk_coverage(conf, hit)
    rows = []
    for t in np.linspace(0.0, 1.0, n):
        at = [r for r in curve if r["threshold"] >= t]
        if at:
            rows.append({"threshold": round(float(t), 3), **{k: round(at[0][k], 4)
                         for k in ("coverage", "risk")}})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fit the answer selector (train + val only).")
    parser.add_argument("--model", default=None, help="model reference (default: shipped)")
    parser.add_argument("--release", default=DEFAULT_RELEASE)
    parser.add_argument("--seen", type=int, default=1200, help="re-asked train questions")
    parser.add_argument("--val", type=int, default=400, help="val questions")
    parser.add_argument(
        "--casual-rate",
        type=float,
        default=0.0,
        help="typed rewordings of the re-asked questions, per question (CASUAL_PHRASINGS)",
    )
    parser.add_argument("--typed-rate", type=float, default=0.0,
                        help="share of the calibration questions rewritten with typing noise "
                        "(lower case, no question mark, a typo)")  # fmt: skip
    parser.add_argument("--threshold-on", default=None, choices=["dev_natural"],
                        help="set the abstention threshold on this natural-question split "
                        "instead (questions typed as people type; never a held-out set): "
                        "the lowest at which at most --served-risk of its served answers "
                        "are wrong")  # fmt: skip
    parser.add_argument("--served-risk", type=float, default=0.05)
    parser.add_argument("--max-risk", type=float, default=None, help="threshold rule: the "
                        "lowest at which at most this share of served answers is wrong "
                        "(default: at most 3%% of the known facts abstain)")  # fmt: skip
    parser.add_argument(
        "--teacher",
        default="float32",
        choices=TEACHER_PRECISIONS,
        help="fit it for this teacher: float32 (PyTorch and the float32 "
        "export) or int8 (the served export, answered through onnxruntime)",
    )
    parser.add_argument("--out", default=None, help="where to write (default: selector.json, "
                        "or selector_int8.json, in the model directory)")  # fmt: skip
    args = parser.parse_args(argv)
    from celltext.data.release import load_release
    from celltext.inference.loading import resolve_ref
    from celltext.inference.options import BankConfig, PredictorConfig

    release = load_release(args.release)
    config = PredictorConfig(bank=BankConfig(release=args.release, split="train"))
    predictor = _unfitted_predictor(args.model, config, args.teacher)
    selector, report = calibrate(
        predictor, release.pairs("train"), release.pairs("val"), n_seen=args.seen,
        n_val=args.val, max_risk=args.max_risk, casual_rate=args.casual_rate,
        typed_rate=args.typed_rate,
    )  # fmt: skip
    if args.threshold_on:
        from celltext.data.heldout import load_heldout

        rows = load_heldout(args.threshold_on, release=args.release)
        threshold, natural = threshold_on_natural(predictor, selector, rows, args.served_risk)
        report["abstain_below_in_scope_rule"] = selector.abstain_below
        report["threshold_on"] = {"split": args.threshold_on, **natural}
        selector.abstain_below = threshold
        selector.fitted_on = {**selector.fitted_on, "threshold_on": report["threshold_on"]}
    out = Path(args.out) if args.out else resolve_ref(args.model) / SELECTOR_FILES[args.teacher]
    selector.save(out)
    sys.stdout.write(json.dumps({"selector": str(out), **report}, indent=2) + "\n")
    return 0


def _unfitted_predictor(ref, config, teacher: str):
    """The model ``ref`` without a selector (the one being refitted is not loaded: it may be
    stale), with the train bank of ``config``'s release: on PyTorch for ``float32``, through
    its built export with the int8 teacher for ``int8`` (``celltext export onnx``)."""
    from celltext.inference.loading import export_dir_for, load_bank, load_components, resolve_ref
    from celltext.inference.onnx_backend import load_export
    from celltext.inference.predictor import Predictor

    if teacher == "float32":
        return Predictor.from_parts(load_components(ref, config, with_selector=False), config)
    folder = export_dir_for(resolve_ref(ref), teacher)
    if not folder.is_dir():
        where = "" if ref is None else f" --model {ref}"
        raise SystemExit(
            f"no {teacher} export yet: `celltext export onnx --teacher {teacher}{where}`"
        )
    parts = load_export(folder)
    bank = load_bank(parts.teacher, config, required=True)
    return Predictor(parts.teacher, parts.backend, bank, config, parts.info, None, parts.ranker)


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["AnswerSelector", "calibrate", "calibration_set", "candidate_table", "pseudo_word"]
