"""Choosing the answer: candidates, features that predict correctness, a calibrated score.

For each question the production path has up to three candidates:

- ``retrieved``: the answer of the nearest training question (the retrieval baseline);
- ``nearest``: the training answer nearest to the core's predicted embedding ``e``;
- ``edited`` (or ``generated`` for decoders without a prototype): the decoder's text for
  ``e``, editing the retrieved answer as its prototype.

Each candidate gets a feature vector (:data:`FEATURES`) and a per-kind logistic
regression turns it into P(correct), where "correct" means teacher semantic similarity to
the reference answer >= :data:`CORRECT_AT`. The best candidate is served; its probability,
recalibrated once more by Platt scaling (the maximum of several probabilities is biased
upwards), is the answer's one confidence. Below ``abstain_below`` the system abstains.
Everything is fitted on ``val`` by :mod:`celltext.inference.calibrate` and stored as
``selector.json`` beside the model; a model without that file answers through the quality
check and its confidence threshold instead (see :class:`~celltext.inference.predictor.Predictor`).

Shapes: B questions, D teacher dim.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from celltext.inference.ranking import names_subject

SELECTOR_FILE = "selector.json"
CORRECT_AT = 0.8
"""Semantic similarity to the reference at which an answer counts as correct."""
KINDS = ("retrieved", "nearest", "model")
"""Weight sets: the two phrase-bank candidates and the model's own (edited or generated)."""
FEATURES = (
    "q_top1",  # cosine of the question to its nearest training question
    "q_margin",  # top-1 minus top-2 question cosine
    "subject_in_question",  # the retrieved pair's subject occurs in the question
    "core_agrees",  # cos(e, retrieved answer)
    "cand_vs_core",  # cos(candidate, e)
    "cand_vs_question",  # cos(candidate, question)
    "cand_repetition",  # degeneration_factor: 1 no repetition, 0 a word 4 times in a row
    "cand_is_retrieved",  # the candidate's text is the retrieved answer
    "cand_vs_retrieved",  # cos(candidate, retrieved answer): how far an edit left its prototype
    "rank_prob",  # the ranker's probability of the retrieved fact (1 without a ranker)
    "rank_null",  # the ranker's P(no known fact answers the question) (0 without a ranker)
    "intent_match",  # P(the asked intent = the retrieved fact's question type) (1 without)
)
ABSTAIN_TEXT = "I don't know the answer to that."


@dataclass
class Features:
    """Per-question inputs to the selector (arrays over B questions)."""

    q_top1: np.ndarray
    q_margin: np.ndarray
    subject_in_question: np.ndarray
    core_agrees: np.ndarray
    rank_prob: np.ndarray | None = None  # None: no ranker (see FEATURES for the defaults)
    rank_null: np.ndarray | None = None
    intent_match: np.ndarray | None = None


def subject_in_question(subject: str | None, question: str) -> float:
    """1.0 if ``question`` names ``subject`` as whole words, ignoring case, punctuation, a
    possessive and the subject's own spaces and hyphens
    (:func:`~celltext.inference.ranking.names_subject`: "gradcam" names "Grad-CAM")."""
    return float(bool(subject) and names_subject(subject, question))


def candidate_matrix(
    base: Features,
    cand_emb: np.ndarray,
    core: np.ndarray,
    q: np.ndarray,
    reps,
    same,
    retrieved_emb: np.ndarray,
) -> np.ndarray:
    """Feature matrix (B, len(FEATURES)) of one candidate kind for B questions."""
    cols = [
        base.q_top1, base.q_margin, base.subject_in_question, base.core_agrees,
        np.sum(cand_emb * core, axis=1), np.sum(cand_emb * q, axis=1),
        np.asarray(reps, dtype=np.float64), np.asarray(same, dtype=np.float64),
        np.sum(cand_emb * retrieved_emb, axis=1),
        _or(base.rank_prob, 1.0, len(q)), _or(base.rank_null, 0.0, len(q)),
        _or(base.intent_match, 1.0, len(q)),
    ]  # fmt: skip
    return np.stack([np.asarray(c, dtype=np.float64) for c in cols], axis=1)


def _or(values: np.ndarray | None, default: float, n: int) -> np.ndarray:
    return np.full(n, default) if values is None else values


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


@dataclass
class AnswerSelector:
    """Per-kind logistic regressions + Platt scaling of the chosen probability."""

    weights: dict[str, list[float]] = field(default_factory=dict)  # kind -> coef
    bias: dict[str, float] = field(default_factory=dict)
    platt: tuple[float, float] = (1.0, 0.0)  # a, b: sigmoid(a * logit(p) + b)
    abstain_below: float = 0.0
    fitted_on: dict[str, Any] = field(default_factory=dict)

    @property
    def fitted(self) -> bool:
        return bool(self.weights)

    def kind_probability(self, kind: str, x: np.ndarray) -> np.ndarray:
        """P(correct) (B,) of candidates of ``kind`` with features ``x`` (B, F)."""
        key = _key(kind)
        if not self.fitted:
            raise ValueError("the selector is not fitted (python -m celltext.inference.calibrate)")
        w = np.asarray(self.weights[key], dtype=np.float64)
        return _sigmoid(x @ w + self.bias[key])

    def calibrated(self, p: np.ndarray) -> np.ndarray:
        """The served confidence from the chosen candidate's probability."""
        p = np.clip(p, 1e-6, 1 - 1e-6)
        a, b = self.platt
        return _sigmoid(a * np.log(p / (1 - p)) + b)

    def choose(self, matrices: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
        """The best kind per question and its calibrated confidence (B,)."""
        kinds = list(matrices)
        probs = np.stack([self.kind_probability(k, matrices[k]) for k in kinds])  # (K, B)
        best = np.argmax(probs, axis=0)  # ties: the earlier kind (retrieved first)
        chosen = probs[best, np.arange(probs.shape[1])]
        return [kinds[i] for i in best], self.calibrated(chosen)

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> AnswerSelector:
        """Read ``selector.json``; a malformed file raises ``ValueError`` naming it."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            sel = cls(
                weights={k: [float(v) for v in data["weights"][k]] for k in KINDS},
                bias={k: float(data["bias"][k]) for k in KINDS},
                platt=(float(data["platt"][0]), float(data["platt"][1])),
                abstain_below=float(data["abstain_below"]),
                fitted_on=dict(data.get("fitted_on", {})),
            )
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"{path}: not a valid selector file ({exc})") from exc
        values = [*sel.bias.values(), *sel.platt, sel.abstain_below]
        values += [v for w in sel.weights.values() for v in w]
        if any(len(w) != len(FEATURES) for w in sel.weights.values()) or not all(
            math.isfinite(v) for v in values
        ):
            raise ValueError(
                f"{path}: selector weights have the wrong size or are not finite (fitted for "
                f"another feature set? refit: python -m celltext.inference.calibrate --model DIR)"
            )
        if not 0.0 <= sel.abstain_below <= 1.0:
            raise ValueError(f"{path}: abstain_below must be in 0..1")
        return sel

    @classmethod
    def for_model(cls, model_dir: str | Path | None) -> AnswerSelector:
        """The selector stored beside a model, or an unfitted one."""
        if model_dir is not None and (Path(model_dir) / SELECTOR_FILE).is_file():
            return cls.load(Path(model_dir) / SELECTOR_FILE)
        return cls()


def fit_selector(
    matrices: dict[str, np.ndarray],
    correct: dict[str, np.ndarray],
    in_scope: np.ndarray,
    max_in_scope_abstention: float = 0.03,
    seed: int = 0,
    max_risk: float | None = None,
) -> AnswerSelector:
    """Fit on calibration data: per kind, ``matrices[kind]`` (N, F) and ``correct[kind]``
    (N,) 0/1; ``in_scope`` (N,) marks the questions about known subjects. The abstention
    threshold is the highest that abstains on at most ``max_in_scope_abstention`` of them;
    with ``max_risk``, the lowest at which at most that share of the served answers (every
    calibration question at or above it) is wrong (:func:`risk_coverage`)."""
    from sklearn.linear_model import LogisticRegression

    sel = AnswerSelector()
    for kind in matrices:
        y, key = correct[kind].astype(int), _key(kind)
        if y.min() == y.max():  # one class only: a constant probability
            sel.weights[key], sel.bias[key] = [0.0] * len(FEATURES), _logit(y.mean())
            continue
        lr = LogisticRegression(C=1.0, max_iter=2000, random_state=seed)
        lr.fit(matrices[kind], y)
        sel.weights[key] = [float(v) for v in lr.coef_[0]]
        sel.bias[key] = float(lr.intercept_[0])
    for key in KINDS:  # a kind absent from calibration is never chosen
        sel.weights.setdefault(key, [0.0] * len(FEATURES))
        sel.bias.setdefault(key, -30.0)
    kinds, raw = AnswerSelector(sel.weights, sel.bias).choose(matrices)
    hit = np.array([correct[k][i] for i, k in enumerate(kinds)], dtype=int)
    z = np.log(np.clip(raw, 1e-6, 1 - 1e-6) / np.clip(1 - raw, 1e-6, 1)).reshape(-1, 1)
    platt = LogisticRegression(C=100.0, max_iter=2000).fit(z, hit)
    sel.platt = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))
    conf = sel.calibrated(raw)
    if max_risk is not None:
        curve = risk_coverage(conf, hit)
        ok = [row["threshold"] for row in curve if row["risk"] <= max_risk]
        sel.abstain_below = float(min(ok)) if ok else 1.0
        return sel
    inside = np.sort(conf[in_scope.astype(bool)])
    k = int(math.floor(max_in_scope_abstention * len(inside)))
    sel.abstain_below = float(inside[k]) if len(inside) and k > 0 else 0.0
    return sel


def risk_coverage(conf: np.ndarray, correct: np.ndarray) -> list[dict[str, float]]:
    """For each distinct confidence ``t`` (ascending): the share of questions served at
    threshold ``t`` (confidence >= t, the coverage) and the share of those served wrongly
    (the risk)."""
    conf, correct = np.asarray(conf, float), np.asarray(correct, float)
    order = np.argsort(-conf, kind="stable")
    c, hit = conf[order], correct[order]
    wrong = np.cumsum(1.0 - hit)  # among the first i + 1 (most confident)
    rows = []
    for i in range(len(c)):
        if i + 1 < len(c) and c[i + 1] == c[i]:
            continue  # ties are served together
        rows.append({"threshold": float(c[i]), "coverage": (i + 1) / len(c),
                     "risk": float(wrong[i] / (i + 1))})  # fmt: skip
    return rows[::-1]


def _key(kind: str) -> str:
    return "model" if kind in ("edited", "generated") else kind


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return float(math.log(p / (1 - p)))


def expected_calibration_error(conf: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """ECE with ``bins`` equal-width bins (Guo et al. 2017; DESIGN.md's definition)."""
    conf, correct = np.asarray(conf, float), np.asarray(correct, float)
    if not len(conf):
        return 0.0
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return float(total)


def reliability(conf: np.ndarray, correct: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Reliability-diagram rows: per bin, mean confidence, accuracy and count."""
    conf, correct = np.asarray(conf, float), np.asarray(correct, float)
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    return [
        {"bin": b / bins, "confidence": float(conf[idx == b].mean()),
         "accuracy": float(correct[idx == b].mean()), "n": int((idx == b).sum())}
        for b in range(bins) if (idx == b).any()
    ]  # fmt: skip
