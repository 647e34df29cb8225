"""Schedule, early stopping, data order, tokenisation, losses and state round trips."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from training_fakes import HashTeacher, fake_release

from celltext.training.args import DataArgs
from celltext.training.data import (
    IndexStream,
    build_run_data,
    load_run_data,
    save_run_data,
    select_texts,
    tokenize,
)
from celltext.training.loop import set_gradient_checkpointing, total_steps
from celltext.training.schedule import EarlyStopping, make_scheduler, warmup_cosine
from celltext.training.state import (
    load_optimizer,
    load_rng,
    load_scheduler,
    save_optimizer,
    save_rng,
    save_scheduler,
)
from celltext.training.tasks import DecoderTask, core_loss, info_nce, noisy


def test_warmup_cosine_shape():
    values = [warmup_cosine(s, 10, 110, 0.1) for s in range(111)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert values[10] == pytest.approx(1.0) and values[110] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(values[10:], values[11:], strict=False))  # monotone decay


def test_early_stopping():
    stop = EarlyStopping(mode="max", patience=2)
    assert stop.update(0.5) and not stop.update(0.4) and not stop.should_stop
    assert not stop.update(0.5) and stop.should_stop
    assert EarlyStopping(mode="min").update(1.0)


def test_index_stream_is_seeded_epochwise_permutation():
    s = IndexStream(10, seed=3)
    first = s.take(0, 10)
    assert sorted(first.tolist()) == list(range(10))
    assert torch.equal(s.take(0, 25), IndexStream(10, 3).take(0, 25))
    assert torch.equal(s.take(7, 6), torch.cat([s.take(7, 3), s.take(10, 3)]))
    assert not torch.equal(first, IndexStream(10, 4).take(0, 10))
    assert not torch.equal(first, s.take(10, 10))  # each epoch reshuffles


def test_total_steps_from_epochs():
    from celltext.training.args import TrainArgs

    args = TrainArgs(epochs=2, batch_size=8, grad_accum_steps=2)
    assert total_steps(args, 100, world=1) == 13  # ceil(200 / 16)
    assert total_steps(args, 100, world=2) == 7
    assert total_steps(TrainArgs(max_steps=5), 100, 1) == 5


def test_tokenize_pads_and_truncates(tmp_path):
    from celltext.tokenizer import CellTokenizer

    tok = CellTokenizer.train(["hello world"] * 4, vocab_size=280)
    ids, lengths = tokenize(tok, ["hello", "hello world " * 20], max_tokens=8)
    assert ids.shape == (2, 8) and lengths.tolist()[1] == 8
    assert ids[0, 0] == tok.bos_id and ids[0, lengths[0] - 1] == tok.eos_id
    assert (ids[0, lengths[0] :] == tok.pad_id).all() and ids[1, -1] == tok.eos_id


def test_run_data_round_trip_and_selection(tmp_path):
    from celltext.tokenizer import CellTokenizer

    release = fake_release()
    args = DataArgs(max_train_pairs=10, max_val_pairs=4, use_extra_texts=True, max_tokens=16)
    sel = select_texts(release, args)
    assert len(sel["train"]) == 10 and len(sel["val"]) == 4
    assert sel == select_texts(release, args)
    tok = CellTokenizer.train(sel["decoder_texts"], vocab_size=300)
    data = build_run_data(release, HashTeacher(16), tok, args)
    assert data.texts.emb.shape[1] == 16 and len(data.train_pairs) == 10
    save_run_data(data, tmp_path)
    back = load_run_data(tmp_path)
    assert back.texts.texts == data.texts.texts and back.fingerprint == data.fingerprint
    assert torch.equal(back.train_pairs.answers.ids, data.train_pairs.answers.ids)
    assert torch.equal(back.val_pairs.q_emb, data.val_pairs.q_emb)


def test_core_loss_terms():
    t = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    loss, parts = core_loss(t, t, 1.0, 1.0, 0.0, 0.05)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)
    loss, parts = core_loss(-t, t, 1.0, 0.0, 0.0, 0.05)
    assert float(loss) == pytest.approx(2.0, abs=1e-5)
    assert float(info_nce(t, t, 0.01)) < float(info_nce(t.roll(1, 0), t, 0.01))
    assert torch.allclose(noisy(t, 0.1).norm(dim=-1), torch.ones(6))


def test_decoder_targets_mask_padding():
    ids = torch.tensor([[1, 5, 6, 2, 0], [1, 7, 2, 0, 0]])
    targets = DecoderTask._targets(ids, torch.tensor([4, 3]))
    assert targets.tolist() == [[5, 6, 2, -100], [7, 2, -100, -100]]


def test_optimizer_scheduler_rng_round_trip(tmp_path):
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sched = make_scheduler(opt, 2, 10, 0.1)
    for _ in range(3):
        model(torch.randn(2, 4)).sum().backward()
        opt.step()
        sched.step()
    save_optimizer(opt, tmp_path)
    save_scheduler(sched, tmp_path)
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    save_rng(tmp_path)
    expected = (random.random(), np.random.rand(), torch.rand(1))

    model2 = torch.nn.Linear(4, 3)
    model2.load_state_dict(model.state_dict())
    opt2 = torch.optim.AdamW(model2.parameters(), lr=0.1)
    sched2 = make_scheduler(opt2, 2, 10, 0.1)
    load_optimizer(opt2, tmp_path)
    load_scheduler(sched2, tmp_path)
    load_rng(tmp_path)
    assert (random.random(), np.random.rand()) == expected[:2]
    assert torch.equal(torch.rand(1), expected[2])
    assert sched2.last_epoch == sched.last_epoch and sched2.get_last_lr() == sched.get_last_lr()
    for m, o, s in ((model, opt, sched), (model2, opt2, sched2)):
        torch.manual_seed(0)
        o.zero_grad()
        m(torch.randn(2, 4)).sum().backward()
        o.step()
        s.step()
    for a, b in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(a, b)


def test_gradient_checkpointing_gives_same_gradients():
    import celltext.models  # noqa: F401  (registers every architecture)
    from celltext.models.zoo import create_model

    torch.manual_seed(0)
    dec = create_model("ret", "decoder", d_model=32, n_layers=2, n_heads=2, vocab_size=300, dim=16)
    emb, ids = torch.randn(2, 16), torch.randint(3, 300, (2, 7))

    def grads():
        dec.zero_grad()
        dec(emb, ids).sum().backward()
        return [p.grad.clone() for p in dec.parameters()]

    plain = grads()
    assert set_gradient_checkpointing(dec, True) == 2
    ckpt = grads()
    assert set_gradient_checkpointing(dec, False) == 2
    for a, b in zip(plain, ckpt, strict=True):
        torch.testing.assert_close(a, b)
