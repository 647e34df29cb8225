"""Byte-level BPE tokenizer for the decoders (Hugging Face ``tokenizers``).

Every string is representable: the ByteLevel pre-tokenizer maps each UTF-8 byte to one of
256 printable symbols, all 256 are in the base vocabulary (``initial_alphabet``), and the
BPE model has no unknown token. So ``decode(encode(text)) == text`` for any Unicode text
and an ``<UNK>`` id cannot occur (the failure of the earlier 44-word vocabulary).

Special tokens have fixed ids: ``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2. They are only ever
produced by :meth:`CellTokenizer.encode` through ``add_bos``/``add_eos``; the literal text
``"<eos>"`` inside an input is encoded as ordinary bytes (``encode_special_tokens``).

Vocabulary size: 4096 by default. The decoders tie input and output embeddings, so the
vocabulary costs ``vocab_size * d_model`` parameters; at d_model 128 that is 0.52M of the
``ret`` decoder's 1M budget. Measured on 500 held-out FOLDOC answers (tokenizer trained on
12k others): 2048 -> 33.8 tokens per answer, 4096 -> 28.8, 8192 -> 25.6. Going to 8192
would save 11% of the decoding steps but cost another 0.52M parameters (the whole rest of
the budget); 2048 makes every answer 17% longer (see ``docs/HYBRID_ARCHITECTURE.md``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
SPECIAL_TOKENS = (PAD, BOS, EOS)
DEFAULT_VOCAB_SIZE = 4096
_BYTE_ALPHABET = 256


class CellTokenizer:
    """Thin wrapper around a ``tokenizers.Tokenizer`` with fixed special-token ids."""

    def __init__(self, tokenizer: Tokenizer):
        for i, tok in enumerate(SPECIAL_TOKENS):
            if tokenizer.token_to_id(tok) != i:
                raise ValueError(f"special token {tok!r} must have id {i}")
        # not serialised by ``tokenizers``, so set on every construction
        tokenizer.encode_special_tokens = True
        self._tok = tokenizer

    # -- construction ------------------------------------------------------------------
    @classmethod
    def train(
        cls, texts: Iterable[str], vocab_size: int = DEFAULT_VOCAB_SIZE, min_frequency: int = 2
    ) -> CellTokenizer:
        """Train byte-level BPE on ``texts`` (an iterable of strings).

        The result has at most ``vocab_size`` entries (fewer when the corpus runs out of
        merges) and always contains the 3 special tokens and all 256 byte symbols.
        """
        minimum = len(SPECIAL_TOKENS) + _BYTE_ALPHABET
        if vocab_size < minimum:
            raise ValueError(f"vocab_size must be >= {minimum} (specials + 256 bytes)")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=list(SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(texts, trainer)
        return cls(tok)

    @classmethod
    def from_str(cls, data: str) -> CellTokenizer:
        """Rebuild from the JSON string written by :meth:`to_str`."""
        return cls(Tokenizer.from_str(data))

    @classmethod
    def load(cls, path: str | Path) -> CellTokenizer:
        """Read a ``tokenizer.json`` written by :meth:`save`."""
        return cls.from_str(Path(path).read_text(encoding="utf-8"))

    def to_str(self) -> str:
        """The whole tokenizer as a JSON string."""
        return self._tok.to_str()

    def save(self, path: str | Path) -> Path:
        """Write ``tokenizer.json`` (a file path) and return it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_str(), encoding="utf-8")
        return path

    # -- properties ---------------------------------------------------------------------
    @property
    def pad_id(self) -> int:
        return 0

    @property
    def bos_id(self) -> int:
        return 1

    @property
    def eos_id(self) -> int:
        return 2

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    @property
    def fingerprint(self) -> str:
        """sha256 of the serialised tokenizer (to check a model and tokenizer belong together)."""
        return hashlib.sha256(self.to_str().encode("utf-8")).hexdigest()

    # -- encode / decode ----------------------------------------------------------------
    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Token ids of ``text``, optionally wrapped in ``<bos>``/``<eos>``."""
        ids = self._tok.encode(text, add_special_tokens=False).ids
        return ([self.bos_id] if add_bos else []) + ids + ([self.eos_id] if add_eos else [])

    def encode_batch(
        self, texts: Sequence[str], add_bos: bool = False, add_eos: bool = False
    ) -> list[list[int]]:
        """:meth:`encode` for many texts (parallel in Rust)."""
        encs = self._tok.encode_batch(list(texts), add_special_tokens=False)
        head = [self.bos_id] if add_bos else []
        tail = [self.eos_id] if add_eos else []
        return [head + e.ids + tail for e in encs]

    def decode(self, ids: Sequence[int], skip_special: bool = True) -> str:
        """Text of ``ids``. Special tokens are dropped; decoding stops at nothing.

        Ids that cut a multi-byte character in half decode to U+FFFD, never raise.
        """
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=skip_special)

    def id_to_token(self, idx: int) -> str | None:
        """The vocabulary entry of ``idx`` (byte-level symbols), or None if out of range."""
        return self._tok.id_to_token(int(idx))

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"CellTokenizer(vocab_size={self.vocab_size})"
