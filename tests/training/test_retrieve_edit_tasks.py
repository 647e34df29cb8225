"""Bank-wide contrastive core loss and retrieve-and-edit decoder batches."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from celltext.index import nearest_rows
from celltext.training.data import TextTable
from celltext.training.tasks import (
    CoreTask,
    DecoderTask,
    Prototypes,
    bank_nce,
    core_loss,
    proto_batch,
)


def _table(n=8, width=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, width + 1, (n,), generator=g)
    ids = torch.zeros(n, width, dtype=torch.long)
    for i, ln in enumerate(lengths.tolist()):
        ids[i, 0], ids[i, ln - 1] = 1, 2
        ids[i, 1 : ln - 1] = torch.randint(3, 50, (ln - 2,), generator=g)
    emb = F.normalize(torch.randn(n, 16, generator=g), dim=-1)
    return TextTable([f"t{i}" for i in range(n)], emb, ids, lengths)


def test_nearest_rows_never_picks_the_excluded_row():
    t = _table()
    emb = t.emb.numpy()
    own = nearest_rows(emb, emb)
    assert own.tolist() == list(range(8))  # without exclusion each text is its own nearest
    other = nearest_rows(emb, 3.0 * emb, exclude=np.arange(8), chunk=3)  # rows renormalised
    assert not np.any(other == np.arange(8))
    cos = emb @ emb.T - 2.0 * np.eye(8)  # (8, 8) without the diagonal
    assert other.tolist() == cos.argmax(axis=1).tolist()
    partial = nearest_rows(emb, emb, exclude=np.array([-1, 1, -1, -1, -1, -1, -1, -1]))
    assert partial[0] == 0 and partial[1] != 1  # -1: nothing excluded


def test_bank_nce_ranks_against_every_answer():
    bank = F.normalize(torch.randn(20, 16), dim=-1)
    target = torch.tensor([3, 7])
    good = bank_nce(bank[target] * 5, bank, target, 0.05)
    bad = bank_nce(bank[[7, 3]] * 5, bank, target, 0.05)
    assert good < 0.1 < bad
    loss, parts = core_loss(bank[target], bank[target], 1.0, 1.0, 1.0, 0.05, bank, target)
    assert "nce" in parts and torch.isfinite(loss)


def test_core_task_builds_one_bank_row_per_distinct_answer():
    q = torch.randn(4, 16)
    a = F.normalize(torch.randn(3, 16), dim=-1)[[0, 1, 0, 2]]
    task = CoreTask(q, a, q, a, train_answers=["x", "y", "x", "z"])
    assert task.bank.shape == (3, 16)
    assert task.target_idx.tolist() == [0, 1, 0, 2]
    batch = task.batch(torch.tensor([2, 3]), torch.device("cpu"))
    assert batch["target_idx"].tolist() == [0, 2]


def test_prototypes_mix_pure_self_and_neighbour_batches():
    t = _table(32)
    protos = Prototypes(t, nearest_rows(t.emb, t.emb, torch.arange(32)), 4, 0.5, 0.5)
    kinds = set()
    for start in range(0, 32, 4):
        idx = torch.arange(start, start + 4)
        ids = protos.ids_for(idx, t)
        again = protos.ids_for(idx, t)
        assert (ids is None and again is None) or torch.equal(ids, again)  # deterministic
        if ids is None:
            kinds.add("pure")
            continue
        assert ids.shape[0] == 4 and ids.shape[1] <= 4
        assert not torch.any((ids == 1) | (ids == 2))  # no bos/eos inside a prototype
        kinds.add("proto")
    assert kinds == {"pure", "proto"}
    assert proto_batch([torch.tensor([5, 6]), torch.tensor([7])]).tolist() == [[5, 6], [7, 0]]


def test_decoder_task_feeds_prototypes_to_the_model():
    t = _table(8)
    seen = {}

    class Spy(torch.nn.Module):
        def forward(self, emb, ids, proto_ids=None):
            seen["proto"] = proto_ids
            return torch.zeros(ids.shape[0], ids.shape[1], 50, requires_grad=True)

    protos = Prototypes(t, nearest_rows(t.emb, t.emb, torch.arange(8)), 4, 0.0, 0.0)
    task = DecoderTask(t, t, prototypes=protos, val_prototypes=protos)
    batch = task.batch(torch.arange(4), torch.device("cpu"))
    task.loss(Spy(), batch)
    assert seen["proto"] is not None and seen["proto"].shape[0] == 4


def test_no_weight_decay_on_mamba_a_log_and_d():
    from celltext.models.blocks.mamba import MambaBlock, MambaConfig
    from celltext.training.loop import param_groups

    block = MambaBlock(MambaConfig(d_model=16, d_state=4))
    decay, no_decay = param_groups(block, 0.1)
    decayed = {id(p) for p in decay["params"]}
    assert id(block.A_log) not in decayed and id(block.D) not in decayed
    assert any(p.dim() >= 2 for p in decay["params"])  # the projections still decay
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
