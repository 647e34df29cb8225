"""Tiny models, phrase banks and releases for the serving tests (built in seconds)."""

from __future__ import annotations

from pathlib import Path

from celltext.paths import DEFAULT_RELEASE

PAIRS = [
    ("What is backpropagation?", "Backpropagation computes gradients of a loss by the chain rule."),
    ("What is a neural network?", "A neural network is a model made of layers of weighted units."),
    ("What does SGD stand for?", "SGD stands for stochastic gradient descent."),
    ("What is overfitting?", "Overfitting is fitting noise in the training data."),
    ("What is a tokenizer?", "A tokenizer splits text into tokens."),
    ("What is the capital of France?", "Paris is the capital of France."),
    ("What is reinforcement learning?", "Reinforcement learning trains agents from rewards."),
    ("What is a convolution?", "A convolution slides a small filter over an input."),
]

TINY_CORES = {
    "mlp": {"hidden": 32, "n_blocks": 1},
    "hybrid_cct_mamba": {
        "cct": {"image_size": (8, 8), "in_channels": 1, "dim": 16, "n_layers": 1, "n_heads": 2},
        "lattice": {"size": (3, 3, 2), "state_dim": 8, "steps": 2},
        "mamba": {"n_layers": 1, "d_state": 4},
        "head_layers": 1,
    },
}  # fmt: skip
TINY_DECODERS = {
    "ret": {"d_model": 32, "n_layers": 1, "n_heads": 2, "n_prefix": 2},
    "hybrid_cct_mamba": {"d_model": 32, "n_heads": 2, "n_prefix": 2, "pattern": "MA", "d_state": 4},
    "enhanced_cct": {"d_model": 32, "n_heads": 2, "n_layers": 1, "n_prefix": 2},
    "ret_edit": {"d_model": 32, "n_heads": 2, "n_layers": 1, "n_prefix": 2, "max_proto_tokens": 8},
}


def tiny_tokenizer():
    """A byte-level BPE trained on the tiny pairs."""
    from celltext.tokenizer import CellTokenizer

    texts = [t for pair in PAIRS for t in pair] * 3
    return CellTokenizer.train(texts, vocab_size=400, min_frequency=1)


def tiny_checkpoint(
    path: Path, core: str = "mlp", decoder: str = "ret", seed: int = 0, teacher=None, steps: int = 0
) -> Path:
    """Save a tiny CellTextModel checkpoint at ``path`` (384-D, MiniLM); with ``teacher`` and
    ``steps`` > 0 it is first fitted to :data:`PAIRS` (memorised in a few seconds)."""
    import torch

    from celltext.models.system import CellTextModel, SystemConfig
    from celltext.registry.checkpoint import save_checkpoint

    torch.manual_seed(seed)
    tok = tiny_tokenizer()
    dec_cfg = {**TINY_DECODERS[decoder], "vocab_size": tok.vocab_size}
    cfg = SystemConfig(core=core, core_config=dict(TINY_CORES[core]), decoder=decoder,
                       decoder_config=dec_cfg)  # fmt: skip
    model = CellTextModel(cfg)
    if teacher is not None and steps > 0:
        _fit(model, tok, teacher, steps)
    model.eval()
    return save_checkpoint(path, model, tok, config={"preset": "serving-test"},
                           metadata={"name": f"tiny-{core}-{decoder}",
                                     "version": str(seed)})  # fmt: skip


def tiny_bank(teacher):
    """A phrase bank over :data:`PAIRS`."""
    from celltext.index import RetrievalIndex

    return RetrievalIndex.from_pairs([q for q, _ in PAIRS], [a for _, a in PAIRS], teacher, "tiny")


def _fit(model, tok, teacher, steps: int) -> None:
    """Teacher-forced decoder + cosine core training on :data:`PAIRS` (tiny, CPU, seconds)."""
    import torch
    import torch.nn.functional as F

    q = torch.from_numpy(teacher.encode([q for q, _ in PAIRS]))  # (N, D)
    a = torch.from_numpy(teacher.encode([a for _, a in PAIRS]))  # (N, D)
    seqs = tok.encode_batch([a for _, a in PAIRS], add_bos=True, add_eos=True)
    length = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), length), tok.pad_id, dtype=torch.long)  # (N, L)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        logits = model.decoder(a, ids[:, :-1])  # (N, L-1, V)
        loss = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], ignore_index=tok.pad_id)
        loss = loss + (1 - F.cosine_similarity(model.core(q), a)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


TEST_PAIRS = [
    ("Could you explain backpropagation?", PAIRS[0][1]),
    ("Define overfitting.", PAIRS[3][1]),
]


def tiny_release(root: Path, version: str = DEFAULT_RELEASE) -> Path:
    """A release ``root/version`` with :data:`PAIRS` as train and :data:`TEST_PAIRS` as
    test_paraphrase (point ``CELLTEXT_RELEASES`` at ``root`` to use it)."""
    from celltext.data.release import write_release
    from celltext.data.schema import QAPair

    def pair(i: int, q: str, a: str, split: str) -> QAPair:
        return QAPair(id=f"{split}-{i}", question=q, answer=a, domain="deep_learning",
                      subject=f"s{i}", qtype="definition", template_id="def_q1",
                      source="glossary", split=split)  # fmt: skip

    pairs = [pair(i, q, a, "train") for i, (q, a) in enumerate(PAIRS)]
    pairs += [pair(i, q, a, "test_paraphrase") for i, (q, a) in enumerate(TEST_PAIRS)]
    return write_release(pairs, root / version, version)
