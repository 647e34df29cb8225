"""Resumable training state, stored without pickle.

A checkpoint's ``train_state/`` directory holds::

    state.json               TrainState: stage, step, best metric, early-stopping counter, ...
    optimizer.safetensors    optimizer tensors (``state.<param index>.<name>``)
    optimizer.json           param groups and non-tensor optimizer state
    scheduler.json           LR scheduler state_dict (plain numbers)
    rng.json                 Python and NumPy RNG states
    rng.safetensors          torch CPU (and CUDA) RNG states
    best.safetensors         best weights of the stage's module so far (if not the current ones)

``torch.save`` is pickle, so none of this uses it: tensors go to safetensors and
everything else to JSON. The files are written inside a checkpoint's temporary directory
(see :func:`celltext.registry.checkpoint.save_checkpoint`), which is what makes them atomic.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from celltext.registry.tensorio import load_tensors, save_tensors, write_json_atomic

STATE_FILE = "state.json"


@dataclass
class TrainState:
    """Where a run is: enough to continue it exactly."""

    stage: str = ""
    """Stage in progress (or just finished)."""
    step: int = 0
    """Optimizer steps done in this stage."""
    total_steps: int = 0
    """Optimizer steps this stage will run (unless it stops early)."""
    stage_done: bool = False
    """The stage has finished (best weights restored)."""
    completed_stages: list[str] = field(default_factory=list)
    """Stages finished before this one."""
    best_metric: float | None = None
    """Best value of the stage's selection metric so far."""
    best_step: int = 0
    """Step at which ``best_metric`` was reached."""
    best_eval: dict[str, float] = field(default_factory=dict)
    """Validation metrics of the best evaluation (un-prefixed keys, e.g. ``val/cosine``)."""
    bad_evals: int = 0
    """Evaluations since the last improvement (early stopping)."""
    stopped_early: bool = False
    """Early stopping ended the stage."""
    samples_seen: int = 0
    """Training examples consumed in this stage (all processes)."""
    elapsed_s: float = 0.0
    """Training wall time so far, all stages, across restarts."""
    metrics: dict[str, float] = field(default_factory=dict)
    """Latest metrics of every stage (namespaced keys, e.g. ``core/val/cosine``)."""
    world_size: int = 1
    """Number of processes the state was written with."""

    def save(self, directory: Path) -> None:
        """Write ``state.json``."""
        write_json_atomic(directory / STATE_FILE, asdict(self), fsync=False)

    @classmethod
    def load(cls, directory: Path) -> TrainState:
        """Read ``state.json``."""
        return cls(**json.loads((directory / STATE_FILE).read_text()))


# -- optimizer ------------------------------------------------------------------------------
def save_optimizer(optimizer: torch.optim.Optimizer, directory: Path) -> None:
    """Optimizer state_dict -> safetensors (tensors) + JSON (groups and scalars)."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, pstate in sd["state"].items():
        for key, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"state.{pid}.{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    save_tensors(directory / "optimizer.safetensors", tensors, fsync=False)
    write_json_atomic(
        directory / "optimizer.json",
        {"param_groups": sd["param_groups"], "scalars": scalars},
        fsync=False,
    )


def load_optimizer(optimizer: torch.optim.Optimizer, directory: Path) -> None:
    """Inverse of :func:`save_optimizer`."""
    tensors, _ = load_tensors(directory / "optimizer.safetensors")
    meta = json.loads((directory / "optimizer.json").read_text())
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = value
    for pid, values in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(values)
    groups = meta["param_groups"]
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# -- scheduler ------------------------------------------------------------------------------
def save_scheduler(scheduler: Any, directory: Path) -> None:
    """LR scheduler state (plain numbers) -> JSON."""
    sd = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
    write_json_atomic(directory / "scheduler.json", sd, fsync=False)


def load_scheduler(scheduler: Any, directory: Path) -> None:
    """Inverse of :func:`save_scheduler` (the LR lambdas come from the code, not the file)."""
    sd = json.loads((directory / "scheduler.json").read_text())
    sd["lr_lambdas"] = [None] * len(scheduler.lr_lambdas)
    scheduler.load_state_dict(sd)


# -- RNG ------------------------------------------------------------------------------------
def save_rng(directory: Path) -> None:
    """Python, NumPy and torch RNG states (JSON + safetensors)."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    write_json_atomic(
        directory / "rng.json",
        {
            "python": [version, list(internal), gauss],
            "numpy": [
                np_state[0],
                np_state[1].tolist(),
                int(np_state[2]),
                int(np_state[3]),
                float(np_state[4]),
            ],
        },
        fsync=False,
    )
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    save_tensors(directory / "rng.safetensors", tensors, fsync=False)


def load_rng(directory: Path) -> None:
    """Inverse of :func:`save_rng`."""
    data = json.loads((directory / "rng.json").read_text())
    version, internal, gauss = data["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = data["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    tensors, _ = load_tensors(directory / "rng.safetensors")
    torch.set_rng_state(tensors["torch_cpu"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(tensors) if k.startswith("torch_cuda_")]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
