"""Learning-rate schedule (linear warm-up, cosine decay) and early stopping."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """LR multiplier at optimizer step ``step`` (0-based): linear warm-up to 1 over
    ``warmup`` steps, then cosine decay to ``min_ratio`` at ``total`` steps."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class _WarmupCosine:
    """Picklable-free callable (a plain object, so ``LambdaLR.state_dict`` stays JSON-able)."""

    def __init__(self, warmup: int, total: int, min_ratio: float):
        self.warmup, self.total, self.min_ratio = warmup, total, min_ratio

    def __call__(self, step: int) -> float:
        return warmup_cosine(step, self.warmup, self.total, self.min_ratio)


def make_scheduler(
    optimizer: torch.optim.Optimizer, warmup: int, total: int, min_ratio: float
) -> LambdaLR:
    """``LambdaLR`` with :func:`warmup_cosine`; step it once per optimizer step."""
    return LambdaLR(optimizer, _WarmupCosine(warmup, total, min_ratio))


@dataclass
class EarlyStopping:
    """Tracks the best value of one metric; ``update`` says whether it improved."""

    mode: str = "max"
    patience: int = 0
    min_delta: float = 0.0
    best: float | None = None
    bad_evals: int = 0

    def is_better(self, value: float) -> bool:
        """Whether ``value`` beats the best so far."""
        if self.best is None or math.isnan(self.best):
            return not math.isnan(value)
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def update(self, value: float) -> bool:
        """Record an evaluation; return True if it is the new best."""
        if self.is_better(value):
            self.best = value
            self.bad_evals = 0
            return True
        self.bad_evals += 1
        return False

    @property
    def should_stop(self) -> bool:
        """Patience exhausted (never when patience is 0)."""
        return self.patience > 0 and self.bad_evals >= self.patience
