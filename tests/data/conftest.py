"""Fixtures for the data tests: tiny dictd databases and a glossary written to tmp dirs.

No Debian package is needed: a dictd ``.dict.dz`` is a gzip file and the index is text.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from celltext.data.schema import QAPair
from celltext.data.sources.dictd import encode_b64_number

FOLDOC = {
    "neural network": (
        "neural network\n\n   <artificial intelligence> A {network} of simple units whose\n"
        "   weights are learned from data.  See {backpropagation}.\n\n   (1997-05-11)\n"
    ),
    "text to speech": (
        "Text To Speech\nTTS\n\n   <application> (TTS) Automatic conversion of text\n"
        "   streams to voice, widely used in {screen readers}.\n\n   (1997-05-11)\n"
    ),
    "10baset": "10baseT\n\n   See {10BASE-T}.\n",
    "bitmap": (
        "bitmap\n\n   <graphics> A data file or structure which corresponds bit for bit\n"
        "   with an image displayed on a screen.\n"
    ),
    "quicksort": (
        "quicksort\n\n   <algorithm> A sorting {algorithm} that partitions an array\n"
        "   around a pivot and sorts the two parts recursively.\n"
    ),
}
VERA = {
    "cnn": "CNN\n       Convolutional Neural Network\n       \n",
    "atm": "ATM\n       Asynchronous Transfer Mode (ATM)\n       \n",
    "atm2": "ATM\n       Automatic Teller Machine\n       \n",
    "gpu": "GPU\n       Graphics Processing Unit (graphics, CPU)\n       \n",
}
ELEMENTS = {
    "iron": "iron\nSymbol: Fe\nAtomic number: 26\nAtomic weight: 55.847\n"
    "Silvery malleable and ductile metallic transition element.\n",
    "broken": "broken\nno fields here at all\n",
}
JARGON = {
    "kluge": (
        "kluge\n /klooj/, n.\n\n    [from the German] 1. A clever programming trick intended\n"
        "    to solve a particular nasty case in an expedient way.\n"
    ),
}
GLOSSARY = """\
domain: reinforcement_learning
entries:
  - term: replay buffer
    def: a memory that stores past transitions for an off-policy learner.
    kind: data structure
    use: to break the correlation between consecutive updates
  - term: policy
    def: a rule that maps states to actions.
    kind: function
    acronym: PI
  - term: broken entry without definition
  - term: discount factor
    def: a number between zero and one that reduces the weight of future rewards.
    kind: hyperparameter
    aka: [gamma]
"""


def write_dictd(directory: Path, name: str, entries: dict[str, str], bad_lines: int = 1) -> None:
    """Write ``name.index`` + ``name.dict.dz``; ``bad_lines`` malformed index lines added."""
    blob = b""
    index = []
    for head, text in entries.items():
        raw = text.encode()
        index.append(f"{head}\t{encode_b64_number(len(blob))}\t{encode_b64_number(len(raw))}")
        blob += raw
    index += ["this line has no tabs"] * bad_lines
    (directory / f"{name}.index").write_text("\n".join(index) + "\n")
    with gzip.open(directory / f"{name}.dict.dz", "wb") as fh:
        fh.write(blob)


@pytest.fixture()
def dictd_dir(tmp_path) -> Path:
    """A directory holding tiny foldoc, vera, elements and jargon databases (per test)."""
    return _make_dictd(tmp_path / "dictd")


@pytest.fixture(scope="session")
def shared_dictd_dir(tmp_path_factory) -> Path:
    """The same databases, shared read-only by the build tests."""
    return _make_dictd(tmp_path_factory.mktemp("shared") / "dictd")


def _make_dictd(d: Path) -> Path:
    d.mkdir()
    write_dictd(d, "foldoc", FOLDOC)
    write_dictd(d, "vera", VERA)
    write_dictd(d, "elements", ELEMENTS, bad_lines=0)
    write_dictd(d, "jargon", JARGON, bad_lines=0)
    return d


@pytest.fixture(scope="session")
def glossary_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("glossary")
    (d / "rl.yaml").write_text(GLOSSARY)
    return d


class FakeTeacher:
    """Deterministic stand-in for the teacher: hashed bag-of-words vectors (fast, no model)."""

    id = "fake-teacher"
    dim = 64

    def encode(self, texts, batch_size=64, progress=False, cache=True):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                h = int(hashlib.md5(word.strip(".,").encode()).hexdigest(), 16)
                out[i, h % self.dim] += 1.0
            out[i, 0] += 0.5  # no zero vectors
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture(scope="session")
def fake_teacher() -> FakeTeacher:
    return FakeTeacher()


@pytest.fixture()
def tiny_pairs() -> list[QAPair]:
    """Five pairs, one per split (two in train)."""
    out = []
    for i, split in enumerate(["train", "train", "val", "test_paraphrase", "test_unseen"]):
        out.append(
            QAPair(
                id=f"id{i}",
                question=f"What is thing {i}?",
                answer=f"Thing {i} is a test object.",
                domain="general_knowledge",
                subject=f"thing {i}",
                qtype="definition",
                template_id="definition_noun_q1",
                source="test",
                split=split,
            )
        )
    return out
