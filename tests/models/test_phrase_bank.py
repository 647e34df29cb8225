"""Phrase bank: cosine top-k against brute force, persistence, the registered retrieval decoder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import celltext.models.decoders  # noqa: F401
from celltext.models.decoders.phrase_bank import PhraseBankDecoder
from celltext.models.phrase_bank import PhraseBank, PhraseBankIntegrityError
from celltext.tokenizer import CellTokenizer
from celltext.models.zoo import count_parameters, create_model

TEXTS = [f"answer number {i} about topic {i % 3}" for i in range(20)]


@pytest.fixture
def bank() -> PhraseBank:
    rng = np.random.default_rng(0)
    return PhraseBank(TEXTS, rng.normal(size=(20, 8)) * 3)


def test_search_matches_brute_force(bank):
    rng = np.random.default_rng(1)
    queries = rng.normal(size=(5, 8)).astype(np.float32)
    hits = bank.search(queries, k=4)
    unit = bank.embeddings
    for q, row in zip(queries, hits, strict=True):
        sims = unit @ (q / np.linalg.norm(q))
        expect = np.argsort(-sims)[:4]
        assert [i for i, _ in row] == expect.tolist()
        np.testing.assert_allclose([s for _, s in row], sims[expect], rtol=1e-5, atol=1e-6)
    # an entry's own embedding (any scale) is its own nearest neighbour with cosine 1
    own = bank.search(bank.embeddings[[3, 7]] * 5.0, k=1)
    assert [row[0][0] for row in own] == [3, 7]
    assert own[0][0][1] == pytest.approx(1.0, abs=1e-5)
    assert bank.nearest_texts(bank.embeddings[11])[0][0] == TEXTS[11]
    assert len(bank.search(queries, k=100)[0]) == 20


def test_bad_inputs(bank):
    with pytest.raises(ValueError, match=r"\(B, 8\)"):
        bank.search(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="must match"):
        PhraseBank(["a"], np.zeros((2, 8)))
    with pytest.raises(ValueError, match="k must"):
        bank.search(np.zeros(8), k=0)
    with pytest.raises(ValueError, match="empty"):
        PhraseBank([], np.zeros((0, 8))).search(np.zeros(8))


def test_save_load_roundtrip_and_integrity(bank, tmp_path):
    bank.save(tmp_path / "bank")
    loaded = PhraseBank.load(tmp_path / "bank")
    assert loaded.texts == bank.texts
    np.testing.assert_array_equal(loaded.embeddings, bank.embeddings)
    meta_path = tmp_path / "bank" / "phrase_bank.json"
    meta = json.loads(meta_path.read_text())
    meta["embeddings_sha256"] = "0" * 64
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(PhraseBankIntegrityError, match="sha256"):
        PhraseBank.load(tmp_path / "bank")
    with pytest.raises(FileNotFoundError):
        PhraseBank.load(tmp_path / "missing")


def test_from_teacher_dedupes():
    class FakeTeacher:
        def encode(self, texts, batch_size=64):
            return np.eye(8, dtype=np.float32)[: len(texts)]

    bank = PhraseBank.from_teacher(["a", "b", "a"], FakeTeacher())
    assert bank.texts == ["a", "b"] and bank.embeddings.shape == (2, 8)


def test_registered_retrieval_decoder(bank):
    assert count_parameters(create_model("phrase_bank_v1")) == 0
    tok = CellTokenizer.train(TEXTS * 3, vocab_size=300)
    model = PhraseBankDecoder.from_bank(bank, tok, max_len=16)
    out = model.generate(torch.from_numpy(bank.embeddings[[4, 9]]), num_beams=4)
    assert [tok.decode(ids) for ids in out] == [TEXTS[4], TEXTS[9]]
    # forward is the teacher-forced distribution of the retrieved answer
    ids = torch.tensor([[tok.bos_id] + tok.encode(TEXTS[4])])
    logits = model(torch.from_numpy(bank.embeddings[[4]]), ids)
    assert logits.argmax(-1)[0, :-1].tolist() == ids[0, 1:].tolist()
    assert logits.argmax(-1)[0, -1].item() == tok.eos_id
    # a fresh module with the same config loads the buffers strictly
    clone = create_model("phrase_bank_v1", config=model.cfg)
    clone.load_state_dict(model.state_dict(), strict=True)
    assert clone.generate(bank.embeddings[[4]]) == out[:1]
    with pytest.raises(ValueError, match="empty"):
        create_model("phrase_bank_v1").generate(torch.zeros(1, 384))
