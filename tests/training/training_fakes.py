"""Test doubles for training: a bag-of-words hash teacher and a synthetic release.

The hash teacher embeds a text as the normalised sum of per-word pseudo-random vectors
(seeded by the word), so similar sentences get similar embeddings and the core has
something to learn, without loading sentence-transformers. The release is written with
``celltext.data.release.write_release`` when that exists, else served in memory.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

from celltext.data.schema import QAPair

SUBJECTS = [
    ("backpropagation", "an algorithm that computes gradients of a loss through a network"),
    ("dropout", "a regularisation method that zeroes random activations during training"),
    ("a tokenizer", "a program that splits text into tokens"),
    ("overfitting", "fitting noise in the training data instead of the signal"),
    ("a convolution", "an operation that slides a filter over an input"),
    ("a reward", "a number an agent receives after an action"),
    ("a gradient", "the vector of partial derivatives of a function"),
    ("an embedding", "a dense vector that represents an item"),
    ("a docker image", "a packaged file system for running a container"),
    ("a hash table", "a data structure that maps keys to values"),
    ("the median", "the middle value of a sorted list"),
    ("a transformer", "a neural network built from attention layers"),
    ("attention", "a weighted average of values chosen by query key similarity"),
    ("a policy", "a mapping from states to actions"),
    ("an epoch", "one pass over the training data"),
    ("a kernel", "a small matrix of weights used in a convolution"),
    ("recursion", "a function calling itself on a smaller input"),
    ("a compiler", "a program that translates source code into machine code"),
    ("the variance", "the mean squared deviation from the mean"),
    ("a learning rate", "the step size of gradient descent"),
]
TEMPLATES = ["What is {x}?", "Define {x}.", "Explain {x}.", "What does {x} mean?"]
DOMAINS = ["deep_learning", "nlp_llm", "math_statistics", "programming_algorithms"]


def synthetic_pairs() -> list[QAPair]:
    """80 pairs: 20 subjects x 4 templates; templates 0-2 train, 3 val (some test)."""
    pairs = []
    for i, (subject, definition) in enumerate(SUBJECTS):
        answer = f"{subject[0].upper()}{subject[1:]} is {definition}."
        for t, template in enumerate(TEMPLATES):
            split = "train" if t < 3 else ("val" if i % 4 else "test_paraphrase")
            pairs.append(
                QAPair(
                    id=f"p{i:02d}t{t}",
                    question=template.format(x=subject),
                    answer=answer,
                    domain=DOMAINS[i % len(DOMAINS)],
                    subject=subject,
                    qtype="definition",
                    template_id=f"def_q{t}",
                    source="synthetic",
                    split=split,
                )
            )
    return pairs


class HashTeacher:
    """Deterministic bag-of-words embeddings (L2-normalised float32)."""

    def __init__(self, dim: int = 32, id: str = "hash-bow-teacher"):
        self.dim, self.id = dim, id
        self.calls = 0
        self._words: dict[str, np.ndarray] = {}

    def _word(self, word: str) -> np.ndarray:
        if word not in self._words:
            seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
            self._words[word] = np.random.default_rng(seed).standard_normal(self.dim)
        return self._words[word]

    def encode(self, texts, batch_size: int = 64, progress: bool = False, cache: bool = True):
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = re.findall(r"[a-z0-9]+", text.lower()) or ["<empty>"]
            v = sum(self._word(w) for w in words)
            out[i] = v / (np.linalg.norm(v) + 1e-9)
        return out


class MemoryRelease:
    """Stand-in for ``celltext.data.release.Release`` (same reading interface)."""

    def __init__(self, pairs: list[QAPair], version: str = "test"):
        self._pairs = pairs
        self.version = version
        self.sha256 = hashlib.sha256(
            "".join(p.id + p.question + p.answer for p in pairs).encode()
        ).hexdigest()
        self.manifest = {"version": version}

    def pairs(self, split: str) -> list[QAPair]:
        return [p for p in self._pairs if p.split == split]

    def extra_texts(self) -> list[str]:
        return ["Gradient descent follows the negative gradient.", "A matrix is a grid."]


def fake_release(version: str = "test") -> MemoryRelease:
    """The synthetic release (in memory)."""
    return MemoryRelease(synthetic_pairs(), version)


def install(monkeypatch, dim: int = 32) -> HashTeacher:
    """Make runs that load the teacher and the release by name (the CLI, a resume) get the
    hash teacher and the synthetic release: the public loaders are replaced."""
    import celltext.data.release
    import celltext.teacher

    teacher = HashTeacher(dim)
    monkeypatch.setattr(celltext.teacher, "load_teacher", lambda name, **kw: teacher)
    monkeypatch.setattr(celltext.data.release, "load_release", lambda v, **kw: fake_release(v))
    return teacher


def train_tiny(out, **kw):
    """Train the tiny preset (or ``preset=``) without MLflow or progress bars."""
    from celltext.training.presets import load_preset
    from celltext.training.trainer import train

    preset = kw.pop("preset", None) or load_preset("tiny")
    kw.setdefault("teacher", HashTeacher(32))
    kw.setdefault("release", fake_release(preset.data.release))
    return train(preset, out, register=False, progress=False, **kw)
