"""The training loop every stage shares, on Hugging Face Accelerate.

One optimizer step = ``grad_accum_steps`` micro-batches of ``batch_size`` examples on
each of the processes. Examples come from :class:`~celltext.training.data.IndexStream`:
step ``s``, micro-batch ``m``, process ``r`` reads stream positions
``((s * accum + m) * world + r) * batch_size ...``, so the order is a pure function of
the seed and the step (no data-loader state to save) and a resumed run reads exactly
what an uninterrupted one would have. Checkpoints are only taken between optimizer
steps, with the optimizer, scheduler, RNG and early-stopping state.

Accelerate does mixed precision (autocast on ``prepare``), DDP (``accelerate launch``;
gloo on CPU), gradient accumulation (``accumulate`` skips the all-reduce until the last
micro-batch) and clipping. The LR scheduler is stepped here once per optimizer step
(not prepared: Accelerate would step it once per process).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from celltext.registry.tensorio import load_tensors
from celltext.training.args import TrainArgs
from celltext.training.data import IndexStream
from celltext.training.reproducibility import seed_everything
from celltext.training.schedule import EarlyStopping, make_scheduler
from celltext.training.state import (
    TrainState,
    load_optimizer,
    load_rng,
    load_scheduler,
)
from celltext.training.tasks import EvalContext

log = logging.getLogger(__name__)


# -- accelerate -----------------------------------------------------------------------------
def make_accelerator(args: TrainArgs):
    """A fresh ``Accelerator`` for one stage (stages may differ in precision/accumulation)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState, PartialState

    mixed = args.mixed_precision
    if mixed == "fp16" and not torch.cuda.is_available():
        log.warning("fp16 mixed precision needs a GPU; training in float32 on CPU")
        mixed = "no"
    # The process group (PartialState) stays; only precision/accumulation state is reset.
    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    cpu = not torch.cuda.is_available()
    PartialState(cpu=cpu)
    return Accelerator(
        cpu=cpu, mixed_precision=mixed, gradient_accumulation_steps=args.grad_accum_steps
    )


def total_steps(args: TrainArgs, n_train: int, world: int) -> int:
    """Optimizer steps of a stage: ``max_steps`` or ``ceil(epochs * N / global batch)``."""
    if args.max_steps > 0:
        return args.max_steps
    global_batch = args.batch_size * args.grad_accum_steps * world
    return max(1, math.ceil(args.epochs * n_train / global_batch))


def param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay on matrices, none on vectors (biases, norms, gains) nor on
    parameters marked ``no_weight_decay`` (Mamba's ``A_log`` and ``D``)."""
    decay, no_decay = [], []
    for _, p in module.named_parameters():
        if p.requires_grad:
            keep = p.dim() >= 2 and not getattr(p, "no_weight_decay", False)
            (decay if keep else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


# -- gradient checkpointing -----------------------------------------------------------------
def set_gradient_checkpointing(module: nn.Module, enabled: bool) -> int:
    """Turn activation checkpointing on/off; returns how many blocks it flags.

    Every child of every ``nn.ModuleList`` (the repeated blocks) gets its
    ``gradient_checkpointing`` flag set; the models call those blocks through
    :func:`celltext.models.blocks.checkpointing.checkpointed`, which recomputes a flagged
    block's forward in the backward pass, in training mode only.
    """
    count = 0
    for sub in module.modules():
        if isinstance(sub, nn.ModuleList):
            for block in sub:
                block.gradient_checkpointing = enabled
                count += 1
    return count


# -- the loop -------------------------------------------------------------------------------
@dataclass
class StageRun:
    """Inputs of :func:`run_stage`."""

    name: str
    task: Any  # DecoderTask | CoreTask
    module: nn.Module  # the trainable part (model.decoder or model.core), not yet prepared
    args: TrainArgs
    seed: int
    state: TrainState
    resume_dir: Path | None = None  # train_state/ to continue from (same stage)
    save: Callable[..., None] | None = None  # save(state, optimizer, scheduler, best)
    log_metrics: Callable[[dict[str, float], int], None] | None = None
    progress: bool = True


def run_stage(run: StageRun) -> TrainState:
    """Train one stage to its end (or early stop); returns the final state.

    The module's weights are updated in place (best weights restored if configured).
    """
    args, state, task = run.args, run.state, run.task
    accelerator = make_accelerator(args)
    world, rank = accelerator.num_processes, accelerator.process_index
    module = run.module
    module.train()
    if args.gradient_checkpointing:
        set_gradient_checkpointing(module, True)
    optimizer = torch.optim.AdamW(
        param_groups(module, args.weight_decay), lr=args.lr, betas=tuple(args.betas)
    )
    state.total_steps = total_steps(args, task.n_train, world)
    warmup = args.warmup_steps or int(round(args.warmup_ratio * state.total_steps))
    scheduler = make_scheduler(optimizer, warmup, state.total_steps, args.min_lr_ratio)
    metric, mode = args.metric_and_mode(task.default_metric)
    stopper = EarlyStopping(mode=mode, patience=args.early_stopping_patience)
    best: dict[str, torch.Tensor] | None = None

    if run.resume_dir is not None:
        load_optimizer(optimizer, run.resume_dir)
        load_scheduler(scheduler, run.resume_dir)
        stopper.best, stopper.bad_evals = state.best_metric, state.bad_evals
        best_file = run.resume_dir / "best.safetensors"
        if best_file.is_file():
            best, _ = load_tensors(best_file)
    else:
        seed_everything(run.seed)
    model_p, optimizer_p = accelerator.prepare(module, optimizer)
    if run.resume_dir is not None:
        load_rng(run.resume_dir)  # last: nothing above may draw random numbers after this

    stream = IndexStream(task.n_train, run.seed)
    per_micro = args.batch_size * world
    eval_every = args.eval_every or max(
        1, math.ceil(task.n_train / (per_micro * args.grad_accum_steps))
    )
    ctx = EvalContext(accelerator.device, rank, world, lambda t: accelerator.reduce(t, "sum"))
    bar = _progress_bar(run, state, accelerator.is_main_process)
    started, window_t, window_samples, losses = time.perf_counter(), time.perf_counter(), 0, []
    elapsed0 = state.elapsed_s

    def snapshot() -> None:
        state.best_metric, state.bad_evals = stopper.best, stopper.bad_evals
        state.elapsed_s = elapsed0 + time.perf_counter() - started
        if run.save is not None:
            run.save(state, optimizer, scheduler, best)
        accelerator.wait_for_everyone()

    while state.step < state.total_steps and not state.stopped_early:
        step_loss = 0.0
        for micro in range(args.grad_accum_steps):
            start = ((state.step * args.grad_accum_steps + micro) * world + rank) * args.batch_size
            batch = task.batch(stream.take(start, args.batch_size), accelerator.device)
            with accelerator.accumulate(model_p):
                loss, _ = task.loss(model_p, batch)
                accelerator.backward(loss)
                step_loss += float(loss.detach()) / args.grad_accum_steps
        grad_norm = None
        if args.grad_clip > 0:
            grad_norm = accelerator.clip_grad_norm_(model_p.parameters(), args.grad_clip)
        optimizer_p.step()
        if not getattr(optimizer_p, "step_was_skipped", False):
            scheduler.step()
        optimizer_p.zero_grad(set_to_none=True)
        state.step += 1
        state.samples_seen += per_micro * args.grad_accum_steps
        window_samples += per_micro * args.grad_accum_steps
        losses.append(step_loss)

        if state.step % args.log_every == 0 or state.step == state.total_steps:
            now = time.perf_counter()
            mean_loss = float(
                accelerator.reduce(
                    torch.tensor(sum(losses) / len(losses), device=accelerator.device), "mean"
                )
            )
            logged = {
                "train/loss": mean_loss,
                "train/lr": scheduler.get_last_lr()[0],
                "train/samples_per_s": window_samples / max(now - window_t, 1e-9),
                "train/epoch": stream.epoch_of(state.samples_seen),
            }
            if grad_norm is not None:
                logged["train/grad_norm"] = float(grad_norm)
            state.metrics.update({f"{run.name}/{k}": v for k, v in logged.items()})
            if run.log_metrics is not None and accelerator.is_main_process:
                run.log_metrics({f"{run.name}/{k}": v for k, v in logged.items()}, state.step)
            if bar is not None:
                bar.set_postfix(loss=f"{mean_loss:.4f}", sps=f"{logged['train/samples_per_s']:.0f}")
            window_t, window_samples, losses = now, 0, []
        if bar is not None:
            bar.update(1)

        if state.step % eval_every == 0 or state.step == state.total_steps:
            best = _evaluate(run, model_p, accelerator, ctx, stopper, metric, best)
        if args.checkpoint_every and state.step % args.checkpoint_every == 0:
            if state.step < state.total_steps and not state.stopped_early:
                snapshot()

    if bar is not None:
        bar.close()
    if args.gradient_checkpointing:
        set_gradient_checkpointing(module, False)
    accelerator.unwrap_model(model_p, keep_fp32_wrapper=False)
    if args.restore_best and best is not None:
        module.load_state_dict(best, strict=True)
        # the stage's reported validation metrics are those of the weights it keeps
        state.metrics.update({f"{run.name}/{k}": v for k, v in state.best_eval.items()})
    module.eval()
    state.stage_done = True
    snapshot()
    return state


def _evaluate(run, model_p, accelerator, ctx, stopper, metric, best):
    """Evaluate, update early stopping, keep a copy of the best weights."""
    state = run.state
    module = accelerator.unwrap_model(model_p)
    module.eval()
    metrics = run.task.evaluate(module, ctx)
    module.train()
    state.metrics.update({f"{run.name}/{k}": v for k, v in metrics.items()})
    if run.log_metrics is not None and accelerator.is_main_process:
        run.log_metrics({f"{run.name}/{k}": v for k, v in metrics.items()}, state.step)
    if metric not in metrics:
        raise KeyError(f"stage {run.name}: selection metric {metric!r} not in {sorted(metrics)}")
    improved = stopper.update(metrics[metric])
    if improved:
        state.best_step = state.step
        state.best_eval = dict(metrics)
        if run.args.restore_best:
            best = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    state.best_metric, state.bad_evals = stopper.best, stopper.bad_evals
    if stopper.should_stop:
        state.stopped_early = True
        log.info(
            "%s: early stop at step %d (best %s %.4f at step %d)",
            run.name,
            state.step,
            metric,
            stopper.best,
            state.best_step,
        )
    if accelerator.is_main_process:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
        log.info("%s step %d/%d: %s", run.name, state.step, state.total_steps, shown)
    return best


def _progress_bar(run: StageRun, state: TrainState, main: bool):
    if not (run.progress and main):
        return None
    from tqdm.auto import tqdm

    return tqdm(
        total=state.total_steps,
        initial=state.step,
        desc=run.name,
        unit="step",
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.5,
        leave=True,
    )
