"""Activation (gradient) checkpointing of repeated blocks, as a flag on the block.

A model's ``forward`` calls each of its repeated blocks through :func:`checkpointed`; when
the block's ``gradient_checkpointing`` attribute is set (by
:func:`celltext.training.loop.set_gradient_checkpointing`) and it is training with grad
enabled, the block's activations are recomputed in the backward pass (non-reentrant
``torch.utils.checkpoint``) instead of stored. This is Hugging Face's pattern
(``gradient_checkpointing_enable``): nothing replaces the block's ``forward``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint


def checkpointed(block: nn.Module, *args: Any) -> Any:
    """``block(*args)``, recomputed in backward when the block's flag is set and training."""
    if (
        getattr(block, "gradient_checkpointing", False)
        and block.training
        and torch.is_grad_enabled()
    ):
        return checkpoint(block, *args, use_reentrant=False)
    return block(*args)
