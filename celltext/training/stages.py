"""The four training stages as a table: stage name -> what it trains, on what, how.

=========  ===============  =====================================================
stage      trains           on
=========  ===============  =====================================================
decoder    ``model.decoder`` teacher embedding of a text -> that text
core       ``model.core``    question embedding -> answer embedding
finetune   ``model.decoder`` the (frozen) core's predicted answer embedding -> answer
correct    ``model.decoder`` teacher embedding + the decoder's own hypothesis -> text
=========  ===============  =====================================================

Each builder returns a :class:`Stage`; :mod:`celltext.training.loop` runs it. A builder
gets the run directory, where stage ``correct`` keeps the hypotheses it decoded when the
stage began, so a resumed stage edits the same hypotheses.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from celltext.inference.options import DecodingConfig
from celltext.models.stepper import generate_with
from celltext.registry.tensorio import write_json_atomic
from celltext.training.args import Preset, TrainArgs
from celltext.training.data import RunData, TextTable, concat_tables, tokenize
from celltext.training.tasks import CoreTask, DecoderTask, Prototypes, stage_prototypes

log = logging.getLogger(__name__)
HYPOTHESES_FILE = "hypotheses.json"


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


def decoder_stage(preset: Preset, data: RunData, model: Any, tokenizer: Any, run_dir=None) -> Stage:
    cfg = preset.stages.decoder
    return _decoder_stage(
        cfg, data, model, tokenizer, data.texts, data.val_texts,
        generate_samples=cfg.generate_samples,
    )  # fmt: skip


def core_stage(preset: Preset, data: RunData, model: Any, tokenizer: Any, run_dir=None) -> Stage:
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


def finetune_stage(
    preset: Preset, data: RunData, model: Any, tokenizer: Any, run_dir=None
) -> Stage:
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


def correct_stage(
    preset: Preset, data: RunData, model: Any, tokenizer: Any, run_dir: Path | None = None
) -> Stage:
    """The decoder learns to correct its own plain greedy hypotheses (see ``CorrectStage``);
    validation edits the validation texts' hypotheses (``val/edit_*``: correction)."""
    cfg = preset.stages.correct
    train, val = data.texts, data.val_texts
    train_p, _ = stage_prototypes(cfg, model.decoder, data.texts, train, val)
    hyps = _stage_hypotheses(cfg, model.decoder, tokenizer, train, val, run_dir)
    max_tokens = preset.data.max_tokens
    train_hyp = _hypothesis_table(hyps["train"], tokenizer, max_tokens)
    val_hyp = _hypothesis_table(hyps["val"], tokenizer, max_tokens)
    train_p = replace(train_p, hypotheses=train_hyp, hypothesis_rate=cfg.hypothesis_rate)
    val_p = Prototypes(val_hyp, torch.arange(len(val)), train_p.max_tokens, 0.0, 0.0)
    task = DecoderTask(
        train, val, noise_std=cfg.noise_std, label_smoothing=cfg.label_smoothing,
        tokenizer=tokenizer, prototypes=train_p, val_prototypes=val_p,
    )  # fmt: skip
    return Stage(task, model.decoder, cfg.train)


def _stage_hypotheses(cfg, decoder, tokenizer, train, val, run_dir) -> dict[str, list[str]]:
    """``{"train": [...], "val": [...]}``: the decoder's greedy texts for both tables, read
    from the run directory when this stage already decoded them (a resume)."""
    path = None if run_dir is None else Path(run_dir) / HYPOTHESES_FILE
    if path is not None and path.is_file():
        stored = json.loads(path.read_text())
        if len(stored["train"]) == len(train) and len(stored["val"]) == len(val):
            return stored
    log.info("stage correct: decoding %d hypotheses", len(train) + len(val))
    out = {
        "train": decode_hypotheses(decoder, tokenizer, train.emb, cfg.hypothesis_batch),
        "val": decode_hypotheses(decoder, tokenizer, val.emb, cfg.hypothesis_batch),
    }
    if path is not None:
        write_json_atomic(path, out)
    return out


@torch.no_grad()
def decode_hypotheses(decoder, tokenizer, emb: torch.Tensor, batch: int = 256) -> list[str]:
    """Plain greedy texts for embeddings (N, D), with the served generation options
    (:class:`~celltext.inference.options.DecodingConfig`'s defaults), no prototype."""
    decoder.eval()
    opts = DecodingConfig().generation
    texts: list[str] = []
    for start in range(0, len(emb), batch):
        ids = generate_with(decoder, emb[start : start + batch], opts)
        texts.extend(tokenizer.decode(seq).strip() for seq in ids)
    return texts


def _hypothesis_table(texts: list[str], tokenizer, max_tokens: int) -> TextTable:
    """Token ids of hypotheses (they are prototypes only: no embeddings, an (N, 0) tensor)."""
    ids, lengths = tokenize(tokenizer, texts, max_tokens)
    return TextTable(list(texts), torch.zeros(len(texts), 0), ids, lengths)


STAGE_BUILDERS: dict[str, Callable[..., Stage]] = {
    "decoder": decoder_stage,
    "core": core_stage,
    "finetune": finetune_stage,
    "correct": correct_stage,
}


@torch.no_grad()
def predict(core: nn.Module, q_emb: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """The (frozen) core's predictions for question embeddings (N, D), in batches."""
    core.eval()
    return torch.cat([core(q_emb[i : i + batch]).float() for i in range(0, len(q_emb), batch)])
