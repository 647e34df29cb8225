"""ret_correct_v1: a ret_edit decoder that also reads the hypothesis' embedding (feedback)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import celltext.models.decoders  # noqa: F401  (registers the zoo)
from celltext.inference.correction import CorrectorStepper
from celltext.models.decoders.corrector import RETCorrector
from celltext.models.zoo import create_model, resolve

CFG = {"vocab_size": 64, "d_model": 32, "n_layers": 2, "n_heads": 2, "n_prefix": 4,
       "max_proto_tokens": 8}  # fmt: skip


@pytest.fixture()
def editor():
    torch.manual_seed(0)
    return create_model("ret_edit_v1", "decoder", CFG).eval()


def _inputs(batch=3):
    g = torch.Generator().manual_seed(1)
    emb = F.normalize(torch.randn(batch, 384, generator=g), dim=-1)
    hyp = F.normalize(torch.randn(batch, 384, generator=g), dim=-1)
    proto = torch.randint(3, 64, (batch, 5), generator=g)
    return emb, hyp, proto


def test_registered_as_a_decoder():
    assert resolve("ret_correct", "decoder").name == "ret_correct_v1"


def test_prefix_layout_soft_feedback_hypothesis_separator(editor):
    model = RETCorrector.from_editor(editor, n_feedback=3).eval()
    emb, hyp, proto = _inputs()
    assert model.embed_prefix(emb, proto, hyp).shape == (3, 4 + 3 + 5 + 1, 32)
    assert model.prefix_length(5) == 4 + 3 + 5 + 1
    ids = torch.randint(3, 64, (3, 6))
    assert model(emb, ids, proto_ids=proto, hyp_emb=hyp).shape == (3, 6, 64)


def test_from_editor_shares_every_weight_and_reads_feedback(editor):
    model = RETCorrector.from_editor(editor).eval()
    emb, hyp, proto = _inputs()
    ids = torch.randint(3, 64, (3, 6))
    with torch.no_grad():
        # without feedback it is the editor itself
        torch.testing.assert_close(
            model(emb, ids, proto_ids=proto), editor(emb, ids, proto_ids=proto)
        )
        near = model(emb, ids, proto_ids=proto, hyp_emb=emb)  # hypothesis on target
        far = model(emb, ids, proto_ids=proto, hyp_emb=hyp)
    assert not torch.allclose(near, far)  # e_hat changes the prediction


def test_feedback_gets_gradients(editor):
    model = RETCorrector.from_editor(editor).train()
    emb, hyp, proto = _inputs()
    ids = torch.randint(3, 64, (3, 6))
    model(emb, ids, proto_ids=proto, hyp_emb=hyp).logsumexp(-1).mean().backward()
    assert model.feedback[0].weight.grad is not None
    assert float(model.feedback[0].weight.grad.abs().sum()) > 0


def test_stepper_with_feedback_matches_teacher_forcing(editor):
    model = RETCorrector.from_editor(editor).eval()
    emb, hyp, proto = _inputs()
    ids = torch.tensor([[1, 7, 9, 11]] * 3)
    with torch.no_grad():
        full = model(emb, ids, proto_ids=proto, hyp_emb=hyp)  # (3, 4, V)
        stepper = CorrectorStepper(model, emb, proto, hyp)
        first = stepper.first()
        later = [stepper.next(ids[:, i].numpy()) for i in range(1, 4)]
    torch.testing.assert_close(torch.from_numpy(first), full[:, 0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(torch.from_numpy(later[-1]), full[:, 3], atol=1e-4, rtol=1e-4)


def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match="n_feedback"):
        create_model("ret_correct_v1", "decoder", {**CFG, "n_feedback": 0})


def test_save_load_round_trip(editor, tmp_path):
    model = RETCorrector.from_editor(editor, n_feedback=3).eval()
    loaded = RETCorrector.load(model.save(tmp_path / "c", fp16=False))
    emb, hyp, proto = _inputs()
    ids = torch.randint(3, 64, (3, 6))
    with torch.no_grad():
        torch.testing.assert_close(
            loaded(emb, ids, proto_ids=proto, hyp_emb=hyp),
            model(emb, ids, proto_ids=proto, hyp_emb=hyp),
        )
    assert loaded.cfg == model.cfg
