"""The natural-question development set (data/dev/natural_dev_v1.jsonl): it loads as the
``dev_natural`` split, passes its own checker, and shares no answerable subject with the
held-out natural questions (thresholds tuned on it must not see the held-out subjects)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from celltext.data.heldout import (
    DEV_NATURAL,
    HELDOUT_DIR,
    NATURAL_FILE,
    NATURAL_SPLITS,
    load_heldout,
)
from celltext.paths import REPO_ROOT


def test_loads_as_a_natural_split_with_both_parts():
    assert "dev_natural" in NATURAL_SPLITS
    rows = load_heldout("dev_natural")
    answerable = [r for r in rows if r.answerable]
    assert len(rows) >= 300 and len(answerable) >= 200 and len(rows) - len(answerable) >= 80


def test_disjoint_by_subject_and_question_from_the_heldout_set():
    held = [json.loads(x) for x in (HELDOUT_DIR / NATURAL_FILE).read_text().splitlines() if x]
    dev = [json.loads(x) for x in DEV_NATURAL.read_text().splitlines() if x]
    held_subjects = {r["subject"].lower() for r in held if r["answerable"]}
    assert not {r["subject"].lower() for r in dev if r["answerable"]} & held_subjects
    assert not {r["question"].lower() for r in dev} & {r["question"].lower() for r in held}


def test_the_checker_passes():
    spec = importlib.util.spec_from_file_location(
        "check_dev_natural", REPO_ROOT / "scripts" / "check_dev_natural.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not (REPO_ROOT / "data" / "releases" / "v2" / "train.jsonl.gz").is_file():
        pytest.skip("release v2 is not on disk")
    assert module.main(["check_dev_natural.py"]) == 0
