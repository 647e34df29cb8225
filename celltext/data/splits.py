"""Deterministic split assignment by hashing (no RNG state, no order dependence).

* ``test_unseen``: every fact whose *subject* hashes below ``unseen_fraction``. The hash is
  of the normalised subject, so the same subject from two sources lands in the same
  split and no ``test_unseen`` subject is ever in ``train`` or ``val``.
* ``val``: of the remaining facts, those whose fact id hashes below ``val_fraction``.
* ``train``: the rest.
* ``test_paraphrase``: for a ``paraphrase_fraction`` of the train facts (by fact-id hash),
  the same fact asked again with a *reserved* template that never appears in train or val.
"""

from __future__ import annotations

import hashlib


def unit_hash(key: str, salt: str) -> float:
    """A stable number in [0, 1) for ``key`` (sha256 of ``salt|key``)."""
    digest = hashlib.sha256(f"{salt}|{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def subject_key(subject: str) -> str:
    """The normalised form of a subject used for split hashing."""
    return " ".join(subject.lower().split())


def fact_id(source: str, qtype: str, subject: str, aspect: str = "") -> str:
    """Stable id of a fact (also the prefix of its pairs' ids)."""
    key = f"{source}|{qtype}|{subject_key(subject)}" + (f"|{aspect}" if aspect else "")
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def base_split(
    subject: str, fid: str, unseen_fraction: float, val_fraction: float, salt: str
) -> str:
    """``test_unseen`` / ``val`` / ``train`` for a fact."""
    if unit_hash(subject_key(subject), salt + ":subject") < unseen_fraction:
        return "test_unseen"
    if unit_hash(fid, salt + ":val") < val_fraction:
        return "val"
    return "train"


def wants_paraphrase(fid: str, paraphrase_fraction: float, salt: str) -> bool:
    """Whether a train fact also gets a reserved-template ``test_paraphrase`` pair."""
    return unit_hash(fid, salt + ":paraphrase") < paraphrase_fraction
