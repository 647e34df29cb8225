"""The committed model under ``models/default``: intact, within budget, deterministic.

Uses the real teacher (the PyPI-packaged all-MiniLM-L6-v2) and the default release, on a small
fixed sample so the whole module stays within a few seconds of model time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from celltext.cli import app
from celltext.paths import DEFAULT_RELEASE, default_model_dir

MODEL = Path(os.environ.get("CELLTEXT_SHIPPED_MODEL", default_model_dir()))
pytestmark = pytest.mark.skipif(
    not (MODEL / "model.safetensors").is_file(), reason=f"no shipped model at {MODEL}"
)


@pytest.fixture(autouse=True)
def _real_teacher(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _json(args: list[str]) -> dict:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_checkpoint_verifies_and_is_within_budget():
    from celltext.registry import load_checkpoint

    ck = load_checkpoint(MODEL)
    size_mb = sum(f.stat().st_size for f in MODEL.iterdir() if f.is_file()) / 2**20
    assert size_mb <= 25.0
    assert ck.metadata["weights_dtype"] == "float16"
    assert ck.metadata["parameters"]["total"] <= 10_000_000
    assert ck.metadata["dataset"]["version"] == DEFAULT_RELEASE
    trainable = sum(p.numel() for p in ck.model.parameters())
    assert trainable == ck.metadata["parameters"]["total"]


def test_eval_gives_the_same_numbers_on_every_run():
    args = ["eval", "--model", str(MODEL), "--split", "test_paraphrase", "--no-fallback"]
    args += ["--limit", "24", "--latency-samples", "2", "--no-answer-top1", "--json"]
    first, second = _json(args), _json(args)
    assert first["metrics"] == second["metrics"]
    assert first["counts"]["n"] == 24 and first["metrics"]["unknown_token_rate"] == 0.0
    assert first["per_domain"] == second["per_domain"]


def test_ask_answers_from_the_shipped_model():
    out = _json(
        ["ask", "What is backpropagation?", "--model", str(MODEL), "--no-fallback", "--json"]
    )
    assert out["answer"].strip() and not out["fallback"]
    assert 0.0 <= out["confidence"] <= 1.0 and out["latency_ms"] > 0


def test_shipped_selector_abstains_on_nonsense_and_answers_what_it_knows():
    """The fitted selector.json beside the model, on a small phrase bank of release pairs
    (the full bank needs minutes of embedding on a fresh machine)."""
    from celltext.data.release import load_release
    from celltext.index import RetrievalIndex
    from celltext.inference.factory import load_predictor
    from celltext.teacher import load_teacher

    assert (MODEL / "selector.json").is_file()
    teacher = load_teacher()
    pairs = [p for p in load_release().pairs("train") if p.qtype == "acronym"][:200]
    bank = RetrievalIndex.from_release_pairs(pairs, teacher)
    predictor = load_predictor(str(MODEL), teacher=teacher, bank=bank)
    assert predictor.selector.fitted
    known = pairs[0]
    question = f"What's the full form of {known.subject}?"
    nonsense = "What is the meaning of blorfquux?"
    good, bad = predictor.answer([question, nonsense])
    assert bad.abstained and bad.provenance == "abstained" and bad.best_guess
    assert not good.abstained and good.provenance in ("edited", "retrieved", "generated")
    assert good.confidence > bad.confidence


def test_an_answer_does_not_depend_on_what_it_is_batched_with():
    """Edits of prototypes of different lengths are decoded without pad tokens in the
    prefix, so a batch gives exactly the answers its questions get one at a time."""
    from celltext.data.release import load_release
    from celltext.index import RetrievalIndex
    from celltext.inference.factory import load_predictor
    from celltext.teacher import load_teacher

    teacher = load_teacher()
    pairs = [p for p in load_release().pairs("train") if p.qtype == "kind_of"][:150]
    bank = RetrievalIndex.from_release_pairs(pairs, teacher)
    predictor = load_predictor(str(MODEL), teacher=teacher, bank=bank)
    questions = [f"Into which broader class does {p.subject} fall?" for p in pairs[:6]]
    questions += ["What is the meaning of blorfquux?", "Wer hat das Telefon erfunden?"]
    together = predictor.answer(questions)
    alone = [predictor.answer([q])[0] for q in questions]
    key = [(a.answer, a.provenance, round(a.confidence, 4)) for a in together]
    assert key == [(a.answer, a.provenance, round(a.confidence, 4)) for a in alone]
    embs = teacher.encode([p.answer for p in pairs[:6]], cache=False)
    edits = [d.text for d in predictor.decode(embs, mode="edit")]
    assert edits == [predictor.decode(embs[i : i + 1], mode="edit")[0].text for i in range(6)]


def test_answers_are_the_recorded_golden_answers():
    """The first 150 ``test_paraphrase`` questions, answered by the production path (with a
    phrase bank of the train pairs about their subjects) and by the model alone, give the
    answers, provenances and confidences recorded in ``tests/golden`` (its README says
    when and how; ``python tests/golden/record.py`` records them again)."""
    from golden.record import GOLDEN, golden_rows

    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert golden_rows(MODEL) == golden
