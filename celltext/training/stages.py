"""The three training stages as a table: stage name -> what it trains, on what, how.

=========  ===============  =====================================================
stage      trains           on
=========  ===============  =====================================================
decoder    ``model.decoder`` teacher embedding of a text -> that text
core       ``model.core``    question embedding -> answer embedding
finetune   ``model.decoder`` the (frozen) core's predicted answer embedding -> answer
=========  ===============  =====================================================

Each builder returns a :class:`Stage`; :mod:`celltext.training.loop` runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from celltext.training.args import Preset, TrainArgs
from celltext.training.data import RunData, concat_tables
from celltext.training.tasks import CoreTask, DecoderTask, stage_prototypes


@dataclass
class Stage:
    """One stage's task, the module it updates and its optimisation arguments."""

    task: DecoderTask | CoreTask
    module: nn.Module
    args: TrainArgs


def _decoder_stage(cfg, data: RunData, model: Any, tokenizer: Any, train, val, **inputs) -> Stage:
    """A decoder-training stage on ``train``/``val`` text tables (decoder and finetune)."""
    protos = stage_prototypes(cfg, model.decoder, data.texts, train, val)
    task = DecoderTask(
        train,
        val,
        noise_std=cfg.noise_std,
        label_smoothing=cfg.label_smoothing,
        tokenizer=tokenizer,
        prototypes=protos[0],
        val_prototypes=protos[1],
        **inputs,
    )
    return Stage(task, model.decoder, cfg.train)


def decoder_stage(preset: Preset, data: RunData, model: Any, tokenizer: Any) -> Stage:
    cfg = preset.stages.decoder
    return _decoder_stage(
        cfg, data, model, tokenizer, data.texts, data.val_texts,
        generate_samples=cfg.generate_samples,
    )  # fmt: skip


def core_stage(preset: Preset, data: RunData, model: Any, tokenizer: Any) -> Stage:
    cfg = preset.stages.core
    train, val = data.train_pairs, data.val_pairs
    task = CoreTask(
        train.q_emb,
        train.answers.emb,
        val.q_emb,
        val.answers.emb,
        cfg.cosine_weight,
        cfg.mse_weight,
        cfg.contrastive_weight,
        cfg.temperature,
        val_answers=val.answers.texts,
        train_answers=train.answers.texts if cfg.negatives == "bank" else None,
    )
    return Stage(task, model.core, cfg.train)


def finetune_stage(preset: Preset, data: RunData, model: Any, tokenizer: Any) -> Stage:
    cfg = preset.stages.finetune
    pred_train = predict(model.core, data.train_pairs.q_emb)  # (N, D)
    pred_val = predict(model.core, data.val_pairs.q_emb)
    table, inputs = data.train_pairs.answers, pred_train
    if cfg.include_teacher_pairs:  # also the exact answer embeddings, as in the decoder stage
        table = concat_tables(table, data.train_pairs.answers)
        inputs = torch.cat([pred_train, data.train_pairs.answers.emb])
    return _decoder_stage(
        cfg, data, model, tokenizer, table, data.val_pairs.answers,
        train_inputs=inputs, val_inputs=pred_val,
    )  # fmt: skip


STAGE_BUILDERS: dict[str, Callable[[Preset, RunData, Any, Any], Stage]] = {
    "decoder": decoder_stage,
    "core": core_stage,
    "finetune": finetune_stage,
}


@torch.no_grad()
def predict(core: nn.Module, q_emb: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """The (frozen) core's predictions for question embeddings (N, D), in batches."""
    core.eval()
    return torch.cat([core(q_emb[i : i + batch]).float() for i in range(0, len(q_emb), batch)])
