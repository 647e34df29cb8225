"""A tiny deterministic release for evaluation and experiment tests (no files, no model):
:func:`make_pairs` over three domains and every split, :class:`FakeRelease` around them."""

from __future__ import annotations

_SUBJECTS = [
    ("backpropagation", "deep_learning", "computes the gradient of the loss for every weight"),
    ("dropout", "deep_learning", "randomly zeroes activations during training to regularise"),
    ("tokenizer", "nlp_llm", "splits text into tokens that a language model can read"),
    ("attention", "nlp_llm", "weights every input position by its relevance to a query"),
    ("convolution", "computer_vision", "slides a learned filter over an image"),
    ("pooling", "computer_vision", "summarises neighbouring activations by their maximum"),
]


def make_pairs():
    """A tiny deterministic set of QAPairs over three domains and all four splits."""
    from celltext.data.schema import QAPair

    pairs = []
    templates = {
        "train": ["What is {s}?", "Define {s}."],
        "val": ["Explain {s}."],
        "test_paraphrase": ["Could you tell me what {s} is?"],
        "test_unseen": ["What does {s} mean?"],
    }
    for i, (subj, dom, core) in enumerate(_SUBJECTS):
        answer = f"{subj.capitalize()} {core}."
        for split, tmpls in templates.items():
            if (split == "test_unseen") != (i >= 4):  # subjects 4, 5 are never in train
                continue
            for j, t in enumerate(tmpls):
                pairs.append(
                    QAPair(
                        id=f"{split}-{i}-{j}", question=t.format(s=subj), answer=answer,
                        domain=dom, subject=subj, qtype="definition", template_id=f"t{j}",
                        source="test", split=split,
                    )
                )  # fmt: skip
    return pairs


class FakeRelease:
    """Release stand-in: ``pairs(split)``, ``version``, ``sha256``, ``manifest``."""

    version = "vtest"
    sha256 = "0" * 64
    manifest: dict = {}

    def __init__(self):
        self._pairs = make_pairs()

    def pairs(self, split):
        return [p for p in self._pairs if p.split == split]
