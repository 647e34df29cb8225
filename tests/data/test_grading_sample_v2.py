"""The hand-graded sample of release v2 answers (data/review/grading_sample_v2.csv) is whole.

300 rows with unique ids, each a pair of release v2 with the same answer text, exactly the
pairs that scripts/draw_grading_sample_v2.py draws; every row graded 0/1 in both columns
and every 0 explained in ``note``. The grades themselves (and the pass rate) are not
tested: they are a reviewer's reading, see data/review/GRADING_RUBRIC_v2.md.
"""

from __future__ import annotations

import csv
import importlib.util
import random

import pytest

from celltext.paths import REPO_ROOT

SAMPLE = REPO_ROOT / "data" / "review" / "grading_sample_v2.csv"
RUBRIC = REPO_ROOT / "data" / "review" / "GRADING_RUBRIC_v2.md"
SCRIPT = REPO_ROOT / "scripts" / "draw_grading_sample_v2.py"
COLUMNS = ["id", "split", "source", "domain", "qtype", "subject", "question", "answer",
           "grammatical", "intended_sense", "note"]  # fmt: skip


def _script():
    spec = importlib.util.spec_from_file_location("draw_grading_sample_v2", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    with SAMPLE.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == COLUMNS
        return list(reader)


@pytest.fixture(scope="module")
def v2_pairs() -> list[dict]:
    return _script().load_pairs()


def test_300_rows_with_unique_ids_and_answers(rows):
    assert len(rows) == 300
    assert len({r["id"] for r in rows}) == 300
    assert len({r["answer"] for r in rows}) == 300
    assert RUBRIC.exists()


def test_every_row_is_a_v2_pair_with_the_same_answer(rows, v2_pairs):
    by_id = {p["id"]: p for p in v2_pairs}
    missing = [r["id"] for r in rows if r["id"] not in by_id]
    assert not missing, missing
    for r in rows:
        pair = by_id[r["id"]]
        assert r["answer"] == pair["answer"], r["id"]
        for col in ("split", "source", "domain", "qtype", "subject", "question"):
            assert r[col] == pair[col], (r["id"], col)


def test_the_sample_is_the_scripted_draw(rows, v2_pairs):
    script = _script()
    drawn = random.Random(script.SEED).sample(script.unique_by_answer(v2_pairs), script.N)
    assert [r["id"] for r in rows] == [p["id"] for p in drawn]


def test_every_row_is_graded_and_every_zero_has_a_note(rows):
    for r in rows:
        assert r["grammatical"] in ("0", "1"), r["id"]
        assert r["intended_sense"] in ("0", "1"), r["id"]
        if "0" in (r["grammatical"], r["intended_sense"]):
            assert r["note"].strip(), f"{r['id']}: a 0 without a note"
