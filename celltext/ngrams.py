"""No-repeat n-gram blocking (Hugging Face's ``no_repeat_ngram_size``), torch-free.

Shared by the PyTorch generation loop (:mod:`celltext.models.stepper`) and the NumPy
loop of the onnxruntime backend, which must not import torch.
"""

from __future__ import annotations

from collections.abc import Sequence


def banned_next_tokens(row: Sequence[int], n: int) -> set[int]:
    """Tokens that would complete an n-gram already in ``row`` (empty if ``n`` <= 0)."""
    if n <= 0 or len(row) < n:
        return set()
    prefix = tuple(row[len(row) - n + 1 :]) if n > 1 else ()
    return {row[i + n - 1] for i in range(len(row) - n + 1) if tuple(row[i : i + n - 1]) == prefix}
