"""The registered retrieval decoder ``phrase_bank_v1``, built from the one retrieval index."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import celltext.models.decoders  # noqa: F401
from celltext.index import RetrievalIndex, unit_rows
from celltext.models.decoders.phrase_bank import PhraseBankDecoder
from celltext.models.zoo import count_parameters, create_model
from celltext.tokenizer import CellTokenizer

TEXTS = [f"answer number {i} about topic {i % 3}" for i in range(20)]


@pytest.fixture
def index() -> RetrievalIndex:
    rng = np.random.default_rng(0)
    q, a = unit_rows(rng.normal(size=(20, 8))), unit_rows(rng.normal(size=(20, 8)))
    return RetrievalIndex([f"question {i}?" for i in range(20)], TEXTS, q, a)


def test_registered_retrieval_decoder(index):
    assert count_parameters(create_model("phrase_bank_v1")) == 0
    tok = CellTokenizer.train(TEXTS * 3, vocab_size=300)
    model = PhraseBankDecoder.from_bank(index, tok, max_len=16)
    assert model.cfg.n_entries == 20 and model.cfg.dim == 8
    np.testing.assert_array_equal(model.embeddings.numpy(), unit_rows(index.answer_embs))
    scaled = RetrievalIndex(index.questions, TEXTS, index.question_embs, index.answer_embs * 3)
    unit = PhraseBankDecoder.from_bank(scaled, tok, max_len=16).embeddings  # unit rows again
    np.testing.assert_allclose(unit.numpy(), index.answer_embs, atol=1e-6)
    out = model.generate(torch.from_numpy(index.answer_embs[[4, 9]]), num_beams=4)
    assert [tok.decode(ids) for ids in out] == [TEXTS[4], TEXTS[9]]
    # the decoder retrieves what the index's answer side retrieves, with the same cosine
    query = torch.from_numpy(np.random.default_rng(2).normal(size=(3, 8)).astype(np.float32))
    hits = index.by_answer(query.numpy())
    assert [tok.decode(ids) for ids in model.generate(query)] == [m.text for m in hits]
    np.testing.assert_allclose(model.similarity(query).numpy(), [m.score for m in hits], atol=1e-5)
    # forward is the teacher-forced distribution of the retrieved answer
    ids = torch.tensor([[tok.bos_id] + tok.encode(TEXTS[4])])
    logits = model(torch.from_numpy(index.answer_embs[[4]]), ids)
    assert logits.argmax(-1)[0, :-1].tolist() == ids[0, 1:].tolist()
    assert logits.argmax(-1)[0, -1].item() == tok.eos_id
    # a fresh module with the same config loads the buffers strictly
    clone = create_model("phrase_bank_v1", config=model.cfg)
    clone.load_state_dict(model.state_dict(), strict=True)
    assert clone.generate(index.answer_embs[[4]]) == out[:1]
    with pytest.raises(ValueError, match="empty"):
        create_model("phrase_bank_v1").generate(torch.zeros(1, 384))
