"""End-to-end evaluation logic on a tiny in-memory release with a hashing teacher."""

from __future__ import annotations

import numpy as np
import pytest

from celltext.data.schema import QAPair
from celltext.evaluation.evaluate import EvalRequest, measure_latency, run_eval, select_pairs
from celltext.evaluation.scoring import aggregate, answer_top1, score_items
from celltext.evaluation.systems import RetrievalSystem


def _retrieval(release, teacher):
    return RetrievalSystem.from_release(release, teacher)


def test_retrieval_baseline_finds_the_paraphrased_question(fake_release, hash_teacher):
    base = _retrieval(fake_release, hash_teacher)
    assert base.info()["index_size"] == len(fake_release.pairs("train"))
    answers, score, embs = base.retrieve(["Could you tell me what dropout is?"])
    assert answers[0].startswith("Dropout randomly")
    row = base.index.answers.index(answers[0])
    np.testing.assert_array_equal(embs, base.index.answer_embs[[row]])  # (1, D)
    assert 0 < score[0] <= 1.0001
    assert base.retrieve([])[0] == [] and base.retrieve([])[2].shape == (0, hash_teacher.dim)


def test_retrieval_baseline_rejects_empty_index(fake_release, hash_teacher):
    fake_release._pairs = [p for p in fake_release._pairs if p.split != "train"]
    with pytest.raises(ValueError, match="at least one pair"):
        _retrieval(fake_release, hash_teacher)


def test_select_pairs_is_a_fixed_sample(fake_release):
    pairs = fake_release.pairs("train")
    a = select_pairs(pairs, 5, seed=0)
    assert len(a) == 5 and a == select_pairs(pairs, 5, seed=0)
    assert [pairs.index(p) for p in a] == sorted(pairs.index(p) for p in a)
    assert select_pairs(pairs, None) == pairs
    assert select_pairs(pairs, 10_000) == pairs


def test_run_eval_retrieval_report_shape(fake_release, hash_teacher):
    system = _retrieval(fake_release, hash_teacher)
    request = EvalRequest("retrieval", "test_paraphrase", latency_samples=3)
    rep = run_eval(request, fake_release, system=system, metric_teacher=hash_teacher)
    m = rep["metrics"]
    for key in (
        "bleu", "chrf", "rouge_l", "semantic_similarity", "exact_match", "coherence",
        "unknown_token_rate", "fallback_rate", "core_cosine",
    ):  # fmt: skip
        assert key in m and 0.0 <= m[key] <= 1.0 + 1e-6, key
    # Every paraphrase shares its subject with a train question: retrieval is perfect here.
    assert m["exact_match"] == 1.0
    assert m["bleu"] == pytest.approx(1.0)
    assert m["core_cosine"] == pytest.approx(1.0, abs=1e-5)
    assert m["fallback_rate"] == 0.0
    assert rep["counts"]["n"] == len(fake_release.pairs("test_paraphrase"))
    assert set(rep["per_domain"]) == {"deep_learning", "nlp_llm"}
    assert sum(d["n"] for d in rep["per_domain"].values()) == rep["counts"]["n"]
    assert rep["latency_ms"]["n"] == 3
    assert rep["system"]["kind"] == "retrieval"
    assert rep["task"] == "end_to_end" and rep["split"] == "test_paraphrase"
    assert rep["fallback"] is False and rep["decode"] is None and rep["decode_mode"] is None


def test_run_eval_is_deterministic(fake_release, hash_teacher):
    def once():
        rep = run_eval(
            EvalRequest("retrieval", "test_unseen", latency_samples=2), fake_release,
            system=_retrieval(fake_release, hash_teacher), metric_teacher=hash_teacher,
        )  # fmt: skip
        return {k: rep[k] for k in ("metrics", "counts", "per_domain", "examples")}

    first = once()
    assert first == once()
    # test_unseen subjects are not in train: retrieval cannot be exactly right.
    assert first["metrics"]["exact_match"] == 0.0


def test_run_eval_rejects_bad_combinations(fake_release, hash_teacher):
    system = _retrieval(fake_release, hash_teacher)
    with pytest.raises(ValueError, match="decoder-only"):
        EvalRequest("retrieval", "val", decoder_only=True)
    with pytest.raises(ValueError, match="rerank"):
        run_eval(EvalRequest("retrieval", "val", rerank=4), fake_release, system=system,
                 metric_teacher=hash_teacher)  # fmt: skip
    with pytest.raises(ValueError, match="empty"):
        run_eval(EvalRequest("retrieval", "nosuchsplit"), fake_release, system=system)


def test_aggregate_subsets(hash_teacher):
    q = ["What is a?", "What is b?", "What is c?"]
    hyps = ["Alpha is the first letter.", "Wrong answer here.", "Gamma is the third letter."]
    refs = ["Alpha is the first letter.", "Beta is the second letter.", "Gamma is a letter."]
    items = score_items(q, hyps, refs, hash_teacher)
    assert items["exact_match"].tolist() == [1.0, 0.0, 0.0]
    sub = aggregate(np.array([0]), hyps, refs, items)
    assert sub["n"] == 1 and sub["exact_match"] == 1.0 and sub["bleu"] == pytest.approx(1.0)
    full = aggregate(np.arange(3), hyps, refs, items)
    assert full["exact_match"] == pytest.approx(1 / 3, abs=1e-6)


def test_answer_top1_ranks_the_prediction_among_the_bank(hash_teacher):
    bank = ["Alpha is a letter.", "Beta is a letter.", "Gamma is a letter."]
    core = 5.0 * np.asarray(hash_teacher.encode([bank[1], bank[2]]))  # (2, D), not unit
    top1 = answer_top1(core, [bank[1], bank[0]], bank, hash_teacher)
    assert top1.tolist() == [1.0, 0.0]


def test_measure_latency_counts_calls():
    calls = []
    lat = measure_latency(calls.append, ["a", "b", "c"], warmup=2)
    assert len(calls) == 5 and lat["n"] == 3 and lat["p95"] >= lat["p50"] >= 0
    assert measure_latency(calls.append, [])["n"] == 0


class _ChunkedRetrieval(RetrievalSystem):
    """Retrieval answers each question on its own, so it may be answered in chunks."""

    batch_invariant = True

    def __init__(self, index, teacher):
        super().__init__(index, teacher)
        self.batch_size = 2
        self.calls: list[int] = []

    def predict(self, questions, cache=True):
        self.calls.append(len(questions))
        return super().predict(questions, cache)


def _stable(report):
    return {k: report[k] for k in ("metrics", "counts", "per_domain", "examples")}


@pytest.mark.parametrize("split", ["train", "out_of_scope"])
def test_progress_reports_chunks_with_the_same_results(fake_release, hash_teacher, split):
    fake_release._pairs += [
        QAPair(id=f"o{i}", question=f"Who won match {i}?", answer="-", domain="sport",
               subject="sport", qtype="out_of_scope", template_id="oos", source="test",
               split="out_of_scope")
        for i in range(5)
    ]  # fmt: skip
    base = _retrieval(fake_release, hash_teacher)
    events: list[tuple[str, int, int]] = []
    chunked = _ChunkedRetrieval(base.index, hash_teacher)
    request = EvalRequest("retrieval", split, latency_samples=3, rank_answers=False)
    with_bar = run_eval(request, fake_release, system=chunked, metric_teacher=hash_teacher,
                        on_progress=lambda *e: events.append(e))  # fmt: skip
    n = len(fake_release.pairs(split))
    assert chunked.calls[: (n + 1) // 2] == [2] * (n // 2) + [1] * (n % 2)
    answered = [e for e in events if e[0] == "answer"]
    assert answered == [("answer", min(i, n), n) for i in range(2, n + 2, 2)]
    if split == "train":
        assert ("score", 0, 0) in events and events[-1] == ("latency", 3, 3)
    plain = _retrieval(fake_release, hash_teacher)
    assert _stable(with_bar) == _stable(
        run_eval(request, fake_release, system=plain, metric_teacher=hash_teacher)
    )


def test_a_batch_dependent_system_is_answered_in_one_call(fake_release, hash_teacher):
    events: list[tuple[str, int, int]] = []
    system = _retrieval(fake_release, hash_teacher)  # batch_invariant = False
    run_eval(EvalRequest("retrieval", "train", latency_samples=0), fake_release, system=system,
             metric_teacher=hash_teacher, on_progress=lambda *e: events.append(e))  # fmt: skip
    n = len(fake_release.pairs("train"))
    assert [e for e in events if e[0] == "answer"] == [("answer", 0, n), ("answer", n, n)]


def test_editing_decoder_rerank_copies_the_predictor():
    """``--rerank`` on ``--decode-mode edit/search``: the reranked system gets its own
    predictor config; the base system's is untouched."""
    from types import SimpleNamespace

    from celltext.evaluation.systems import EditingDecoder
    from celltext.inference.options import PredictorConfig

    class Generative:
        teacher = tokenizer = name = None
        batch_size = 4

        def __init__(self, options):
            self.options = options

        def with_options(self, **changes):
            return Generative(self.options.replace(**changes))

    class Predictor(SimpleNamespace):
        def with_config(self, **changes):
            return Predictor(config=self.config.replace(**changes))

    base = EditingDecoder(Predictor(config=PredictorConfig()), Generative(PredictorConfig()),
                          "search")  # fmt: skip
    other = base.reranked(8)
    assert other.predictor.config.decoding.rerank.candidates == 8
    assert other.options.decoding.rerank.candidates == 8
    assert base.predictor.config.decoding.rerank.candidates == 0 and other.mode == "search"
    assert base.decode_settings() is None and base.fallback is False
