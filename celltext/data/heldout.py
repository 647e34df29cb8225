"""Held-out sets that live outside the release (``data/heldout/``, see its README).

Never trained or tuned on; evaluated like release splits:

- ``heldout_paraphrase``: trained subjects asked in phrasings no template uses
  (``paraphrase_<release>.jsonl``: the same hand-written frames, references from that
  release; built by ``scripts/build_heldout.py [v2]``);
- ``heldout_sentences``: sentences written for the decoder, from no release source
  (``sentences.txt``; decoder-only);
- ``out_of_scope``: nonsense, other languages and questions no subject covers
  (``out_of_scope.txt``; only abstention is measured, there is no reference);
- ``heldout_natural``: questions typed the way people type them into a chat box, written by
  hand (``natural_v1.jsonl``): answerable rows (a v2 ``train`` pair's answer is the
  reference, scored like ``heldout_paraphrase``) mixed with plausible questions the release
  cannot answer (answer ``""``, domain ``out_of_scope``, scored like ``out_of_scope``); see
  :func:`celltext.evaluation.natural.evaluate_natural`.

One set beside them is *not* held out: ``dev_natural`` (``data/dev/natural_dev_v1.jsonl``,
see its README), natural questions written the same way about other subjects, on which the
selector's threshold is chosen and changes are compared. It is scored like
``heldout_natural``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celltext.paths import REPO_ROOT

HELDOUT_DIR = REPO_ROOT / "data" / "heldout"
DEV_NATURAL = REPO_ROOT / "data" / "dev" / "natural_dev_v1.jsonl"
HELDOUT_SPLITS = (
    "heldout_paraphrase", "heldout_sentences", "out_of_scope", "heldout_natural", "dev_natural"
)  # fmt: skip
NATURAL_SPLITS = ("heldout_natural", "dev_natural")  # answerable and unanswerable rows mixed
NATURAL_FILE = "natural_v1.jsonl"
OUT_OF_SCOPE_DOMAIN = "out_of_scope"
_NATURAL_KEYS = ("id", "question", "answerable", "answer", "domain", "kind")


@dataclass(frozen=True)
class HeldoutPair:
    """The fields of a release pair that evaluation reads."""

    id: str
    question: str
    answer: str
    domain: str
    subject: str = ""
    qtype: str = ""
    answerable: bool = True
    """False for a question nobody can answer from the release (no reference)."""
    kind: str = ""
    """``heldout_natural``: the question type (answerable) or why it is unanswerable."""


def _lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def _id(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def load_heldout(name: str, root: Path = HELDOUT_DIR, release: str = "v1") -> list[HeldoutPair]:
    """The pairs of held-out set ``name`` (one of :data:`HELDOUT_SPLITS`)."""
    if name == "heldout_paraphrase":
        path = root / f"paraphrase_{release}.jsonl"
        if not path.is_file():  # a release without its own references uses v1's
            path = root / "paraphrase_v1.jsonl"
        rows = []
        for n, line in enumerate(_lines(path), 1):
            try:
                d = json.loads(line)
                rows.append(HeldoutPair(d["id"], d["question"], d["answer"], d["domain"],
                                        d.get("subject", "")))  # fmt: skip
            except (ValueError, KeyError) as exc:
                raise ValueError(f"{path}:{n}: malformed held-out line ({exc})") from exc
        return rows
    if name == "heldout_sentences":
        return [HeldoutPair(_id(s), "", s, "heldout") for s in _lines(root / "sentences.txt")]
    if name == "out_of_scope":
        rows = []
        for line in _lines(root / "out_of_scope.txt"):
            question, _, kind = line.partition("\t")
            kind = kind or OUT_OF_SCOPE_DOMAIN
            rows.append(HeldoutPair(_id(question), question, "", kind, answerable=False, kind=kind))
        return rows
    if name == "heldout_natural":
        return load_natural(root / NATURAL_FILE)
    if name == "dev_natural":
        return load_natural(DEV_NATURAL)
    raise ValueError(f"unknown held-out set {name!r}; choose from {', '.join(HELDOUT_SPLITS)}")


def _natural_row(d: Any) -> HeldoutPair:
    """One line of ``natural_v1.jsonl`` (raises ValueError/KeyError/TypeError if malformed)."""
    if not isinstance(d, dict):
        raise TypeError(f"expected a JSON object, got {type(d).__name__}")
    missing = [k for k in _NATURAL_KEYS if k not in d]
    if missing:
        raise KeyError(f"missing {', '.join(missing)}")
    if not isinstance(d["answerable"], bool):
        raise TypeError(f"answerable must be true or false, got {d['answerable']!r}")
    for key in ("id", "question", "answer", "domain", "kind"):
        if not isinstance(d[key], str):
            raise TypeError(f"{key} must be a string, got {d[key]!r}")
    if not d["question"].strip():
        raise ValueError("empty question")
    if d["answerable"]:
        if not d["answer"].strip() or d["domain"] == OUT_OF_SCOPE_DOMAIN:
            raise ValueError("an answerable row needs a reference answer and a release domain")
    elif d["answer"] or d["domain"] != OUT_OF_SCOPE_DOMAIN:
        raise ValueError(f'an unanswerable row needs answer "" and domain {OUT_OF_SCOPE_DOMAIN!r}')
    return HeldoutPair(d["id"], d["question"], d["answer"], d["domain"], d.get("subject", ""),
                       d.get("qtype", ""), d["answerable"], d["kind"])  # fmt: skip


def load_natural(path: Path) -> list[HeldoutPair]:
    """The rows of ``heldout_natural``; a malformed line or a repeated id raises ValueError
    naming the file and line."""
    rows: list[HeldoutPair] = []
    ids: set[str] = set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        try:
            row = _natural_row(json.loads(line))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{n}: malformed held-out line ({exc})") from exc
        if row.id in ids:
            raise ValueError(f"{path}:{n}: repeated id {row.id!r}")
        ids.add(row.id)
        rows.append(row)
    return rows


def is_answerable(pair: Any) -> bool:
    """Whether ``pair`` has a reference the release answers: a held-out pair says so; a
    release pair is answerable unless its answer is empty or its domain ``out_of_scope``."""
    flag = getattr(pair, "answerable", None)
    if flag is not None:
        return bool(flag)
    return bool(str(pair.answer).strip()) and pair.domain != OUT_OF_SCOPE_DOMAIN


class WithHeldout:
    """A release whose ``pairs(split)`` also knows the held-out sets."""

    def __init__(self, release: Any):
        self._release = release

    def pairs(self, split: str):
        if split in HELDOUT_SPLITS:
            return load_heldout(split, release=getattr(self._release, "version", "v1"))
        return self._release.pairs(split)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._release, name)
