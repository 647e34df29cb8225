"""ret_edit_v1: soft tokens through an MLP, an optional prototype, one generation loop."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import celltext.models.decoders  # noqa: F401  (registers the zoo)
from celltext.models.zoo import create_model, resolve

CFG = {"vocab_size": 64, "d_model": 32, "n_layers": 2, "n_heads": 2, "n_prefix": 4}


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return create_model("ret_edit_v1", "decoder", CFG).eval()


def _inputs(batch=3):
    g = torch.Generator().manual_seed(1)
    emb = F.normalize(torch.randn(batch, 384, generator=g), dim=-1)
    proto = torch.randint(3, 64, (batch, 5), generator=g)
    return emb, proto


def test_family_name_is_separate_from_ret():
    assert resolve("ret", "decoder").name == "ret_v1"  # the <= 1M RET keeps its name
    assert resolve("ret_edit", "decoder").name == "ret_edit_v1"


def test_prefix_is_mlp_soft_tokens_then_prototype_then_separator(model):
    emb, proto = _inputs()
    assert isinstance(model.prefix, torch.nn.Sequential)
    assert model.embed_prefix(emb).shape == (3, 4 + 1, 32)
    assert model.embed_prefix(emb, proto).shape == (3, 4 + 5 + 1, 32)
    assert model.prefix_length(5) == 10


def test_the_prototype_changes_the_prediction(model):
    emb, proto = _inputs()
    ids = torch.randint(3, 64, (3, 6))
    with torch.no_grad():
        plain = model(emb, ids)
        edited = model(emb, ids, proto_ids=proto)
    assert plain.shape == edited.shape == (3, 6, 64)
    assert not torch.allclose(plain, edited)


@pytest.mark.parametrize("with_proto", [False, True])
def test_cached_generation_matches_full_recomputation(model, with_proto):
    emb, proto = _inputs()
    kw = {"proto_ids": proto} if with_proto else {}
    cached = model.generate(emb, max_new_tokens=8, **kw)
    full = model.generate(emb, max_new_tokens=8, use_cache=False, **kw)
    assert cached == full


def test_beam_search_repeats_the_prototype_per_beam(model):
    emb, proto = _inputs(2)
    beams = model.generate(emb, max_new_tokens=6, num_beams=3, proto_ids=proto)
    assert len(beams) == 2
    one = model.generate(emb, max_new_tokens=6, num_beams=1, proto_ids=proto)
    assert one == model.generate(emb, max_new_tokens=6, proto_ids=proto)  # 1 beam == greedy


def test_out_of_range_prototype_tokens_are_refused(model):
    emb, proto = _inputs()
    with pytest.raises(ValueError, match="out of range"):
        model(emb, torch.randint(3, 64, (3, 4)), proto_ids=proto + 100)


def test_learns_to_copy_its_prototype():
    """A few hundred steps on random token strings: the decoder copies the prototype."""
    torch.manual_seed(0)
    m = create_model("ret_edit_v1", "decoder", {**CFG, "n_heads": 2, "d_model": 48})
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    emb = torch.zeros(32, 384)
    for _ in range(300):
        body = torch.randint(3, 64, (32, 5))
        ids = torch.cat([torch.ones(32, 1, dtype=torch.long), body, torch.full((32, 1), 2)], 1)
        logits = m(emb, ids[:, :-1], proto_ids=body)
        loss = F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    body = torch.randint(3, 64, (16, 5), generator=torch.Generator().manual_seed(9))
    out = m.generate(emb[:16], max_new_tokens=6, proto_ids=body)
    copied = sum(o == b for o, b in zip(out, body.tolist(), strict=True))
    assert copied >= 12, f"copied {copied}/16"
