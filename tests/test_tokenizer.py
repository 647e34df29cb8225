"""Byte-level BPE tokenizer: exact round trip on arbitrary Unicode, no unknown ids."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from celltext.tokenizer import CellTokenizer

CORPUS = [
    "Backpropagation computes the gradient of the loss with respect to every weight.",
    "A convolutional neural network applies learned filters to images.",
    "Reinforcement learning maximises the expected discounted return.",
    "The transformer uses self-attention instead of recurrence.",
    "Gradient descent updates parameters in the direction of the negative gradient.",
] * 20


@pytest.fixture(scope="module")
def tok() -> CellTokenizer:
    return CellTokenizer.train(CORPUS, vocab_size=400)


def test_special_ids_and_size(tok):
    assert (tok.pad_id, tok.bos_id, tok.eos_id) == (0, 1, 2)
    assert 259 < tok.vocab_size <= 400
    ids = tok.encode("the gradient", add_bos=True, add_eos=True)
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    assert tok.decode(ids) == "the gradient"
    # merges were learned: a frequent word is shorter than its bytes
    assert len(tok.encode("gradient")) < len("gradient")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=64))
def test_roundtrip_arbitrary_unicode(tok, text):
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    # every id is a real vocabulary entry, and never a special token
    assert all(3 <= i < tok.vocab_size for i in ids)
    assert all(tok.id_to_token(i) is not None for i in ids)


def test_literal_special_text_is_plain_bytes(tok):
    text = "say <eos> and <pad><bos>"
    ids = tok.encode(text)
    assert tok.eos_id not in ids and tok.pad_id not in ids and tok.bos_id not in ids
    assert tok.decode(ids) == text


def test_save_load_and_str_roundtrip(tok, tmp_path):
    path = tok.save(tmp_path / "tok" / "tokenizer.json")
    loaded = CellTokenizer.load(path)
    again = CellTokenizer.from_str(tok.to_str())
    text = "Attention <eos> is all — you need 🤖"
    for other in (loaded, again):
        assert other.encode(text) == tok.encode(text)
        assert other.fingerprint == tok.fingerprint
        assert other.decode(other.encode(text)) == text
    assert tok.encode_batch(["a b", "c"], add_eos=True) == [
        tok.encode("a b", add_eos=True),
        tok.encode("c", add_eos=True),
    ]


def test_decode_of_broken_utf8_does_not_raise(tok):
    ids = tok.encode("日")
    assert len(ids) >= 2  # a 3-byte character, unseen in training
    assert isinstance(tok.decode(ids[:1]), str)


def test_too_small_vocab_rejected():
    with pytest.raises(ValueError, match="vocab_size"):
        CellTokenizer.train(CORPUS, vocab_size=100)
