"""``celltext eval`` and ``celltext bench`` on a tiny release and a tiny (untrained) checkpoint.

The release is written with the data package's ``write_release`` into a temporary
``$CELLTEXT_RELEASES``. The first test uses the real default teacher; the others use a
fast hashing stand-in with the same id and dimension (loading MiniLM dominates run time).
"""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from celltext.cli import app

VERSION = "vtest"
SUBJECTS = [
    ("backpropagation", "deep_learning", "computes the gradient of the loss for every weight"),
    ("dropout", "deep_learning", "randomly zeroes activations during training"),
    ("tokenizer", "nlp_llm", "splits text into tokens that a language model reads"),
    ("attention", "nlp_llm", "weights each input position by its relevance to a query"),
    ("convolution", "computer_vision", "slides a learned filter over an image"),
    ("pooling", "computer_vision", "summarises neighbouring activations by their maximum"),
    ("gradient descent", "math_statistics", "moves parameters against the gradient"),
    ("recursion", "programming_algorithms", "solves a problem through smaller instances"),
]
TEMPLATES = {
    "train": ["What is {s}?", "Define {s}.", "Tell me about {s}."],
    "val": ["Explain {s}."],
    "test_paraphrase": ["Could you tell me what {s} is?", "What do people mean by {s}?"],
    "test_unseen": ["What does {s} mean?"],
}


def _pairs():
    from celltext.data.schema import QAPair

    pairs = []
    for i, (subj, dom, core) in enumerate(SUBJECTS):
        answer = f"{subj[0].upper()}{subj[1:]} {core}."
        for split, tmpls in TEMPLATES.items():
            if (split == "test_unseen") != (i >= 6):  # the last two subjects are unseen
                continue
            for j, t in enumerate(tmpls):
                pairs.append(QAPair(
                    id=f"{split}-{i}-{j}", question=t.format(s=subj), answer=answer, domain=dom,
                    subject=subj, qtype="definition", template_id=f"{split}_t{j}",
                    source="test", split=split,
                ))  # fmt: skip
    return pairs


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A tiny release and a tiny untrained checkpoint (module-scoped: built once)."""
    from celltext.data.release import write_release
    from celltext.models.system import CellTextModel, SystemConfig
    from celltext.registry.checkpoint import save_checkpoint
    from celltext.tokenizer import CellTokenizer

    root = tmp_path_factory.mktemp("releases")
    pairs = _pairs()
    write_release(pairs, root / VERSION, VERSION)
    tok = CellTokenizer.train([p.answer for p in pairs] + [p.question for p in pairs], 300)
    cfg = SystemConfig(
        core="mlp", core_config={"hidden": 32, "n_blocks": 1}, decoder="ret",
        decoder_config={"d_model": 32, "n_layers": 1, "n_heads": 2, "n_prefix": 2,
                        "vocab_size": tok.vocab_size},
        teacher_id="all-MiniLM-L6-v2", dim=384,
    )  # fmt: skip
    ckpt = save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", CellTextModel(cfg), tok)
    return {"releases": root, "ckpt": str(ckpt)}


class StandInTeacher:
    """Bag-of-words hashing encoder posing as all-MiniLM-L6-v2 (384-D, L2-normalised)."""

    id, dim = "all-MiniLM-L6-v2", 384

    def encode(self, texts, batch_size=64, progress=False, cache=True):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[i, int(hashlib.sha256(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


@pytest.fixture
def stand_in(monkeypatch):
    teacher = StandInTeacher()
    monkeypatch.setattr("celltext.teacher.load_teacher", lambda name="minilm": teacher)
    return teacher


def _run(env, monkeypatch, *args) -> dict:
    monkeypatch.setenv("CELLTEXT_RELEASES", str(env["releases"]))
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


EVAL = ("eval", "--release", VERSION, "--latency-samples", "2", "--threads", "1", "--json")


def test_eval_retrieval_json_and_determinism(env, monkeypatch):
    out = _run(env, monkeypatch, *EVAL, "--model", "retrieval", "--split", "test_paraphrase")
    m = out["metrics"]
    expected = {"bleu", "chrf", "rouge_l", "semantic_similarity", "exact_match", "coherence",
                "unknown_token_rate", "fallback_rate", "core_cosine", "answer_top1"}  # fmt: skip
    assert expected <= set(m)
    assert out["counts"]["n"] == 12 and out["split"] == "test_paraphrase"
    assert m["exact_match"] > 0.5  # paraphrases of train questions: retrieval mostly right
    assert m["unknown_token_rate"] == 0.0 and m["fallback_rate"] == 0.0
    assert set(out["per_domain"]) == {"deep_learning", "nlp_llm", "computer_vision"}
    assert out["latency_ms"]["n"] == 2 and out["release"]["version"] == VERSION
    again = _run(env, monkeypatch, *EVAL, "--model", "retrieval", "--split", "test_paraphrase")
    for key in ("metrics", "counts", "per_domain", "examples"):
        assert again[key] == out[key], key


def test_eval_checkpoint_no_fallback_decoder_only_and_rerank(env, monkeypatch, stand_in):
    common = (*EVAL, "--model", env["ckpt"], "--max-new-tokens", "6")
    gen = _run(env, monkeypatch, *common, "--split", "val", "--no-fallback")
    assert gen["system"]["kind"] == "generative" and gen["fallback"] is False
    assert gen["counts"]["n"] == 6 and gen["metrics"]["fallback_rate"] == 0.0
    assert -1.0 <= gen["metrics"]["core_cosine"] <= 1.0
    assert gen["metrics"]["unknown_token_rate"] == 0.0
    assert gen == {**_run(env, monkeypatch, *common, "--split", "val", "--no-fallback"),
                   "latency_ms": gen["latency_ms"], "wall_s": gen["wall_s"]}  # fmt: skip

    dec = _run(env, monkeypatch, *common, "--split", "test_unseen", "--decoder-only",
               "--rerank", "3", "--limit", "2")  # fmt: skip
    assert dec["task"] == "decoder" and dec["counts"]["n"] == 2
    assert "embedding_preservation" in dec["metrics"]
    rr = dec["rerank"]
    assert rr["candidates"] == 3 and "embedding_preservation" in rr["metrics"]
    # Reranking picks by teacher cosine to the input: preservation cannot get worse.
    assert rr["metrics"]["embedding_preservation"] >= dec["metrics"]["embedding_preservation"]


def test_eval_through_the_predictor_reports_fallback(env, monkeypatch, stand_in):
    out = _run(env, monkeypatch, *EVAL, "--model", env["ckpt"], "--split", "val",
               "--max-new-tokens", "6")  # fmt: skip
    assert out["system"]["kind"] == "predictor" and out["fallback"] is True
    # An untrained model writes gibberish: the quality check sends (almost) all to fallback.
    assert out["metrics"]["fallback_rate"] > 0.5
    assert out["counts"]["fallback"] + out["counts"]["generative"] == out["counts"]["n"]


def test_eval_rejects_bad_split(env, monkeypatch):
    monkeypatch.setenv("CELLTEXT_RELEASES", str(env["releases"]))
    result = CliRunner().invoke(app, ["eval", "--split", "nope", "--model", "retrieval"])
    assert result.exit_code != 0 and "unknown split" in result.output


def test_bench_json_shape(env, monkeypatch, stand_in):
    out = _run(env, monkeypatch, "bench", "--model", env["ckpt"], "--release", VERSION,
               "--iters", "2", "--batch", "4", "--threads", "1", "--json")  # fmt: skip
    lat = out["latency_ms"]
    for stage in ("teacher", "core", "decoder", "generative", "end_to_end", "retrieval"):
        assert lat[stage]["n"] == 2 and lat[stage]["p95"] >= lat[stage]["p50"] > 0, stage
    assert out["throughput_per_s"]["batch_size"] == 4
    assert out["throughput_per_s"]["decoder"] > 0
    assert out["ratio_end_to_end_to_retrieval"] > 0
    assert out["params"]["core"] > 0 and out["params"]["decoder"] > 0
    assert out["machine"]["torch_threads"] == 1 and out["machine"]["cpu_count"] >= 1
    assert "RSS" in out["memory"]["method"]


def test_demo_without_a_model_shows_the_release(env, monkeypatch, stand_in, tmp_path):
    monkeypatch.setenv("CELLTEXT_DEFAULT_MODEL", str(tmp_path / "absent"))
    out = _run(env, monkeypatch, "demo", "--release", VERSION, "--json")
    assert out["release"]["per_split"]["test_paraphrase"] == 12
    assert "answers" not in out and len(out["samples"]) == 3  # one per domain of the split
    tc = out["teacher_check"]
    assert tc["cos_question_answer"] > tc["cos_question_unrelated"]


def test_demo_with_a_model_answers_one_question_per_domain(env, monkeypatch, stand_in):
    monkeypatch.setenv("CELLTEXT_DEFAULT_MODEL", env["ckpt"])
    out = _run(env, monkeypatch, "demo", "--release", VERSION, "--eval-limit", "6", "--json")
    domains = [row["domain"] for row in out["answers"]]
    assert domains == sorted({"deep_learning", "nlp_llm", "computer_vision"})
    for row in out["answers"]:
        assert 0.0 <= row["confidence"] <= 1.0 and row["latency_ms"] > 0
        assert isinstance(row["fallback"], bool)
    assert out["eval"]["n"] == 6 and "semantic_similarity" in out["eval"]
