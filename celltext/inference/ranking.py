"""The ranker: which of the phrase bank's candidate facts answers what the question asks.

Retrieval over known questions finds the right fact among its top few almost always, but
its first choice confuses intents (a definition for "What does LSTM stand for?") and
namesakes (``Ridge`` for ``RidgeCV``). The ranker reads the question and its K nearest
known questions and scores each candidate, plus a *null* candidate: "no known fact answers
this" (a question of a kind no release fact answers, or a subject the bank does not hold).

Per question (B questions, K candidates, D teacher dim, I intents):

- an intent head: q (D) -> GELU MLP -> log P(intent) (I), over the release's question types
  and the open kinds of :mod:`celltext.data.intents` (who, when, why, how many, ...);
- per candidate, features (:data:`RANK_FEATURES`): its question's and answer's cosine to
  the question, the core's vote cos(e, answer), log P(the candidate's question type), and
  whether the question names its subject (whole words, or its letters despite a typo);
- a scorer MLP over those features, and a null scorer over the question-level features
  (:data:`NULL_FEATURES`); softmax over K + 1 gives P(candidate) and P(null).

It is trained listwise on training questions re-asked in other training templates (never a
test template) with hard negatives as they come from retrieval (the same subject's other
intents, near-namesakes) by ``celltext train --stage rank`` (:mod:`celltext.training.rank`),
and runs here in numpy: milliseconds, no torch, the same on both backends.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from celltext.data.intents import INTENTS, OPEN_INTENTS
from celltext.data.splits import unit_hash
from celltext.hashing import sha256_file

RANKER_FILE = "ranker.npz"
RANKER_META = "ranker.json"
TOP_K = 20  # the nearest known questions the ranker reads (dev: the reference is among 10 for 0.95)
STATIC_FEATURES = (
    "q_cos",  # cos(question, candidate's known question)
    "q_gap",  # q_cos minus the best candidate's q_cos
    "a_cos",  # cos(question, candidate's answer)
    "core_cos",  # cos(core prediction e, candidate's answer): the core's vote
    "subject_exact",  # the candidate's subject occurs in the question as whole words
    "subject_fuzzy",  # share of the subject's letter trigrams found in the question
    "subject_longest",  # the longest exactly named subject among the candidates
    "rank_recip",  # 1 / (1 + retrieval rank)
    "subject_share",  # share of the candidates about the same subject
)
RANK_FEATURES = (*STATIC_FEATURES, "intent_logp", "intent_is_top")
NULL_FEATURES = ("best_q_cos", "p_open", "max_subject_exact", "max_subject_fuzzy", "best_cand_p")
_OPEN = np.array([i for i, n in enumerate(INTENTS) if n in OPEN_INTENTS])


def dev_subject(subject: str, fraction: float) -> bool:
    """Whether a train subject is one of the ranker's held-out ``dev`` subjects (a hash of
    its lower-cased name below ``fraction``): never trained on, used to measure the ranker
    and to calibrate the selector."""
    return unit_hash(subject.lower(), "rank-dev") < fraction


def dev_template(template_id: str, fraction: float) -> bool:
    """Whether a training template is held out from the ranker (a hash of its id below
    ``fraction``): the selector is calibrated on questions in these phrasings, which the
    ranker never saw, as it will meet test and users' phrasings."""
    return unit_hash(template_id, "rank-dev-template") < fraction


@functools.lru_cache(maxsize=1 << 16)
def normalise(text: str) -> str:
    """Lower case, letters and digits only, single spaces, no possessive "'s"
    ("K-Means" -> "k means", "Zipf's law" -> "zipf law")."""
    text = re.sub(r"\s*\([^)]*\)$", "", text)  # "Brazil (country)" is named "Brazil"
    text = re.sub(r"(?<=\w)['’]s\b", "", text)
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def names_subject(subject: str, question: str) -> bool:
    """Whether ``question`` names ``subject`` as whole words after :func:`normalise`, also
    written without its spaces and hyphens ("gradcam" names "Grad-CAM", "mask rcnn" names
    "Mask R-CNN"; "string" does not name "ring"), or in the plural ("hydrogen bonds")."""
    s, q = normalise(subject), normalise(question)
    return bool(s) and (_names(s, q) or _names_member(subject, q) > 0)


def _names_member(subject: str, q: str) -> int:
    """The length of a dotted code name's last part when ``q`` names it ("np.allclose" names
    ``numpy.allclose``, "ModuleDict" names ``torch.nn.ModuleDict``; 5+ letters), else 0."""
    if "." not in subject:
        return 0
    last = normalise(subject.rsplit(".", 1)[1])
    return len(last) if len(last.replace(" ", "")) >= 5 and _names(last, q) else 0


def _names(s: str, q: str) -> bool:
    padded = f" {q} "
    if any(f" {s}{plural} " in padded for plural in ("", "s", "es")):  # "hydrogen bonds"
        return True
    compact, words = s.replace(" ", ""), q.split()
    if len(compact) < 4:
        return False
    for i in range(len(words)):
        joined = ""
        for word in words[i:]:
            joined += word
            if joined == compact:
                return True
            if len(joined) >= len(compact) or not compact.startswith(joined):
                break
    return False


@functools.lru_cache(maxsize=1 << 16)
def _trigrams(text: str) -> frozenset[str]:
    t = f" {text.replace(' ', '')} "
    return frozenset(t[i : i + 3] for i in range(len(t) - 2))


def subject_scores(subject: str, question: str) -> tuple[float, float, int]:
    """``(exact, fuzzy, length)``: whether the question names the subject
    (:func:`names_subject`), the share of its letter trigrams in the question, and the length
    of the part named (0 when not named)."""
    s, q = normalise(subject), normalise(question)
    if not s:
        return 0.0, 0.0, 0
    length = len(s) if _names(s, q) else _names_member(subject, q)
    grams = _trigrams(s)
    fuzzy = len(grams & _trigrams(q)) / max(len(grams), 1)
    return float(length > 0), fuzzy, length


def static_features(
    questions: list[str],
    q_embs: np.ndarray,
    preds: np.ndarray | None,
    bank,
    rows: np.ndarray,
    q_cos: np.ndarray,
) -> np.ndarray:
    """Features (B, K, len(STATIC_FEATURES)) of the candidates ``rows`` (B, K) with their
    question cosines ``q_cos`` (B, K); ``preds`` (B, D) the core's (None: no core vote)."""
    B, K = rows.shape
    q = q_embs / np.maximum(np.linalg.norm(q_embs, axis=1, keepdims=True), 1e-12)
    ans = bank.answer_embs[rows]  # (B, K, D)
    a_cos = np.einsum("bkd,bd->bk", ans, q)
    core = np.zeros((B, K), np.float32)
    if preds is not None:
        e = preds / np.maximum(np.linalg.norm(preds, axis=1, keepdims=True), 1e-12)
        core = np.einsum("bkd,bd->bk", ans, e)
    subjects = bank.subjects or [""] * len(bank)
    subj = np.zeros((B, K, 3), np.float32)
    share = np.zeros((B, K), np.float32)
    for b, question in enumerate(questions):
        names = [subjects[r] for r in rows[b]]
        for k, name in enumerate(names):
            subj[b, k] = subject_scores(name, question)
            share[b, k] = names.count(name) / K
    longest = subj[:, :, 2]
    is_longest = (longest > 0) & (longest == longest.max(axis=1, keepdims=True))
    cols = [
        q_cos, q_cos - q_cos[:, :1], a_cos, core, subj[:, :, 0], subj[:, :, 1],
        is_longest.astype(np.float32), np.broadcast_to(1.0 / (1.0 + np.arange(K)), (B, K)), share,
    ]  # fmt: skip
    return np.stack([np.asarray(c, np.float32) for c in cols], axis=2)


def candidate_intents(bank, rows: np.ndarray) -> np.ndarray:
    """Intent index (B, K) of each candidate's question type."""
    index = {name: i for i, name in enumerate(INTENTS)}
    qtypes = bank.qtypes or ["definition"] * len(bank)
    return np.vectorize(lambda r: index[qtypes[r]], otypes=[np.int64])(rows)


def _gelu(x: np.ndarray) -> np.ndarray:  # the tanh form, as torch's approximate="tanh"
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))


def _log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


@dataclass
class Ranked:
    """The ranker's verdict for B questions."""

    rows: np.ndarray  # (B,) bank row of the best candidate
    prob: np.ndarray  # (B,) its probability (softmax over K candidates + null)
    null: np.ndarray  # (B,) P(no candidate answers the question)
    intent: list[str]  # (B,) the most likely intent
    intent_match: np.ndarray  # (B,) P(intent = the chosen candidate's question type)


class Ranker:
    """The trained ranker's weights (``ranker.npz``) and its numpy forward pass."""

    def __init__(self, weights: dict[str, np.ndarray], meta: dict | None = None):
        self.w = {k: np.asarray(v, np.float32) for k, v in weights.items()}
        self.meta = meta or {}
        config = self.meta.get("config", {})
        self.dev_fraction = float(config.get("dev_fraction", 0.0))
        self.dev_templates = float(config.get("dev_templates", 0.0))
        if self.w["intent.2.weight"].shape[0] != len(INTENTS):
            raise ValueError("ranker weights were trained for another intent set")

    @classmethod
    def load(cls, model_dir: str | Path) -> Ranker | None:
        """The ranker stored beside a model (None if it has none); a damaged file raises
        ``ValueError``."""
        path, meta_path = Path(model_dir) / RANKER_FILE, Path(model_dir) / RANKER_META
        if not path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            if sha256_file(path) != meta["sha256"]:
                raise ValueError("sha256 mismatch (the file is damaged or was replaced)")
            with np.load(path, allow_pickle=False) as data:
                weights = {k: data[k] for k in data.files}
            return cls(weights, meta)
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"{path}: unreadable ranker ({exc})") from exc

    def save(self, folder: str | Path, meta: dict | None = None) -> Path:
        """Write ``ranker.npz`` and ``ranker.json`` (``meta`` or this ranker's, with the
        weights' sha256) into ``folder``."""
        folder = Path(folder)
        np.savez(folder / RANKER_FILE, **self.w)
        meta = dict(meta if meta is not None else self.meta)
        meta["sha256"] = sha256_file(folder / RANKER_FILE)
        (folder / RANKER_META).write_text(json.dumps(meta, indent=2) + "\n")
        return folder / RANKER_FILE

    def _mlp(self, name: str, x: np.ndarray) -> np.ndarray:
        h = _gelu(x @ self.w[f"{name}.0.weight"].T + self.w[f"{name}.0.bias"])
        return h @ self.w[f"{name}.2.weight"].T + self.w[f"{name}.2.bias"]

    def intents(self, q_embs: np.ndarray) -> np.ndarray:
        """log P(intent) (B, I) of questions (B, D)."""
        return _log_softmax(self._mlp("intent", np.asarray(q_embs, np.float32)))

    def scores(
        self, static: np.ndarray, cand_intents: np.ndarray, q_embs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(log P over K candidates + null (B, K + 1), log P(intent) (B, I))."""
        logp = self.intents(q_embs)  # (B, I)
        cand_logp = np.take_along_axis(logp, cand_intents, axis=1)  # (B, K)
        top = (cand_intents == logp.argmax(axis=1)[:, None]).astype(np.float32)
        feats = np.concatenate([static, cand_logp[..., None], top[..., None]], axis=2)
        cand = self._mlp("scorer", feats)[..., 0]  # (B, K)
        null_in = np.stack(
            [static[:, 0, 0], np.exp(logp[:, _OPEN]).sum(axis=1), static[:, :, 4].max(axis=1),
             static[:, :, 5].max(axis=1), np.exp(cand_logp).max(axis=1)], axis=1,
        )  # fmt: skip
        null = self._mlp("null", null_in.astype(np.float32))  # (B, 1)
        return _log_softmax(np.concatenate([cand, null], axis=1)), logp

    top_k = TOP_K

    def rank(self, questions, q_embs, preds, bank, exclude=None, found=None) -> Ranked:
        """Rank the bank's :data:`TOP_K` nearest known questions for each question
        (``exclude`` (B, N): rows hidden per question, as in
        :meth:`RetrievalIndex.top_questions`; ``found``: that search's ``(rows, cosines)``
        when the caller has made it already, so the index is scanned once)."""
        if found is None:
            found = bank.top_questions(q_embs, k=min(self.top_k, len(bank)), exclude=exclude)
        rows, q_cos = found[0][:, : self.top_k], found[1][:, : self.top_k]  # (B, K)
        static = static_features(list(questions), q_embs, preds, bank, rows, q_cos)
        intents = candidate_intents(bank, rows)
        logp, intent_logp = self.scores(static, intents, q_embs)
        best = logp[:, :-1].argmax(axis=1)  # (B,)
        pick = np.arange(len(best))
        return Ranked(
            rows=rows[pick, best],
            prob=np.exp(logp[pick, best]),
            null=np.exp(logp[:, -1]),
            intent=[INTENTS[i] for i in intent_logp.argmax(axis=1)],
            intent_match=np.exp(intent_logp[pick, intents[pick, best]]),
        )
