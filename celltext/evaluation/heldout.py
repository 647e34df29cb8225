"""Held-out sets that live outside the release (``data/heldout/``, see its README).

Never trained or tuned on; evaluated like release splits:

- ``heldout_paraphrase``: trained subjects asked in phrasings no template uses
  (``paraphrase_v1.jsonl``, built by ``scripts/build_heldout.py``);
- ``heldout_sentences``: sentences written for the decoder, from no release source
  (``sentences.txt``; decoder-only);
- ``out_of_scope``: nonsense, other languages and questions no subject covers
  (``out_of_scope.txt``; only abstention is measured, there is no reference).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celltext.paths import REPO_ROOT

HELDOUT_DIR = REPO_ROOT / "data" / "heldout"
HELDOUT_SPLITS = ("heldout_paraphrase", "heldout_sentences", "out_of_scope")


@dataclass(frozen=True)
class HeldoutPair:
    """The fields of a release pair that evaluation reads."""

    id: str
    question: str
    answer: str
    domain: str
    subject: str = ""


def _lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def _id(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def load_heldout(name: str, root: Path = HELDOUT_DIR) -> list[HeldoutPair]:
    """The pairs of held-out set ``name`` (one of :data:`HELDOUT_SPLITS`)."""
    if name == "heldout_paraphrase":
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
            rows.append(HeldoutPair(_id(question), question, "", kind or "out_of_scope"))
        return rows
    raise ValueError(f"unknown held-out set {name!r}; choose from {', '.join(HELDOUT_SPLITS)}")


class WithHeldout:
    """A release whose ``pairs(split)`` also knows the held-out sets."""

    def __init__(self, release: Any):
        self._release = release

    def pairs(self, split: str):
        if split in HELDOUT_SPLITS:
            return load_heldout(split)
        return self._release.pairs(split)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._release, name)
