"""One trainer for the four stages: set up a run, fit its stages, save, register.

Shaped like litgpt's ``pretrain.py``: :meth:`Trainer.setup` opens the run directory
(:class:`~celltext.training.rundir.RunDir`), prepares the data once
(:mod:`celltext.training.prepare`), builds the model and restores the newest checkpoint;
:meth:`Trainer.fit` runs the enabled stages in order, each built from the table in
:mod:`celltext.training.stages` and trained by :func:`celltext.training.loop.run_stage`,
then writes ``final/`` and registers it. ``train(preset)`` does both.

Stages, in order: ``decoder`` (teacher embedding of a text -> the text), ``core`` (question
embedding -> answer embedding), ``finetune`` (decoder on the core's predictions) and
``correct`` (decoder on its own hypotheses: edit them into the text); see
:data:`celltext.training.args.STAGES`.
``train(preset, resume=True)`` continues from the newest checkpoint that verifies; finished
stages are skipped, the stage in progress continues at its step with the same optimizer,
scheduler, RNG and data order, so the result is bit-identical to an uninterrupted run (on
CPU, same thread count).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from celltext.registry.checkpoint import load_checkpoint, load_state_dict_file, save_checkpoint
from celltext.registry.tensorio import save_tensors
from celltext.registry.tracking import NullTracker, Tracker, flatten, system_metrics
from celltext.training.args import STAGES, Preset
from celltext.training.loop import StageRun, run_stage
from celltext.training.prepare import load_prepared, prepare
from celltext.training.reproducibility import configure_determinism, seed_everything, stage_seed
from celltext.training.rundir import RunDir, RunDirError, default_run_dir
from celltext.training.stages import STAGE_BUILDERS
from celltext.training.state import TrainState, save_optimizer, save_rng, save_scheduler

log = logging.getLogger(__name__)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no fork warnings from tokenizers


@dataclass
class TrainResult:
    """What a finished run produced."""

    checkpoint: Path
    run_dir: Path
    metrics: dict[str, float]
    weights_sha256: str
    elapsed_s: float
    stages: list[str]
    registered: dict[str, Any] | None = None
    resumed_from: str | None = None
    is_main_process: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (what ``celltext train --json`` prints)."""
        return {
            "checkpoint": str(self.checkpoint),
            "run_dir": str(self.run_dir),
            "metrics": self.metrics,
            "weights_sha256": self.weights_sha256,
            "elapsed_s": round(self.elapsed_s, 3),
            "stages": self.stages,
            "registered": self.registered,
            "resumed_from": self.resumed_from,
        }


class Trainer:
    """Trains a :class:`Preset` into a run directory (see the module docstring).

    ``teacher`` and ``release`` are used to prepare the data (by default loaded by the
    preset's names); ``init`` starts from another checkpoint's weights; ``register=None``
    follows the preset (a resumed run keeps the choice it started with).
    """

    def __init__(
        self,
        preset: Preset | None,
        out: str | Path | None = None,
        *,
        resume: bool = False,
        overwrite: bool = False,
        stages: list[str] | None = None,
        register: bool | None = None,
        progress: bool = True,
        teacher: Any = None,
        release: Any = None,
        init: str | Path | None = None,
    ):
        if preset is None and out is None:
            raise RunDirError("need a preset or a run directory to resume")
        self.preset = preset
        self.run_dir = RunDir(out if out is not None else default_run_dir(preset))
        self.resume, self.overwrite = resume, overwrite
        self.requested_stages = stages
        self.register_override = register
        self.progress = progress
        self.teacher, self.release = teacher, release
        self.init = Path(init) if init is not None else None
        self.tracker: Tracker = NullTracker()
        self.registering = False
        self.state = TrainState()
        self.resume_dir: Path | None = None
        self.resumed_from: str | None = None

    @property
    def out(self) -> Path:
        return self.run_dir.path

    # -- setup ------------------------------------------------------------------------------
    def setup(self) -> None:
        """Open the run, prepare its data, build the model, restore the newest checkpoint."""
        from accelerate.state import PartialState

        # cpu=True on a machine without CUDA: several processes then form a gloo group
        self.dist = PartialState(cpu=not torch.cuda.is_available())
        self.main = self.dist.is_main_process
        if not self.main:  # one process reports; the others only warn
            logging.getLogger("celltext").setLevel(logging.WARNING)
        fresh = not self.run_dir.exists()
        if self.main:
            self.preset = self.run_dir.start(
                self.preset,
                resume=self.resume,
                overwrite=self.overwrite,
                stages=self._stages(self.preset) if self.preset is not None else None,
                register=self.register_override,
            )
        self.dist.wait_for_everyone()
        if not self.main:
            self.preset = self.run_dir.reopen()
        configure_determinism(self.preset.threads)
        try:
            if self.main:
                prepare(
                    self.out,
                    self.preset,
                    teacher=self.teacher,
                    release=self.release,
                    progress=self.progress,
                )
            self.dist.wait_for_everyone()
            self.data, self.tokenizer = load_prepared(self.out)
        except Exception:
            if fresh and self.main:  # nothing was trained: leave no run behind to block a retry
                self.run_dir.forget()
            raise
        self._build_model()
        self._open_tracker()
        self.state.world_size = self.dist.num_processes

    def _stages(self, preset: Preset) -> list[str]:
        if not self.requested_stages:
            return preset.enabled_stages()
        unknown = [s for s in self.requested_stages if s not in STAGES]
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}; choose from {list(STAGES)}")
        return [s for s in STAGES if s in self.requested_stages]

    def _build_model(self) -> None:
        from celltext.models.system import CellTextModel, SystemConfig
        from celltext.models.zoo import resolve

        preset, tok = self.preset, self.tokenizer
        dec_fields = resolve(preset.decoder.name, "decoder").config_cls.__dataclass_fields__
        dec = {**preset.decoder.config, "vocab_size": tok.vocab_size}
        dec.update({k: getattr(tok, k) for k in ("pad_id", "bos_id", "eos_id") if k in dec_fields})
        config = SystemConfig(
            core=preset.core.name,
            core_config=dict(preset.core.config),
            decoder=preset.decoder.name,
            decoder_config=dec,
            teacher_id=self.data.teacher["id"],
            dim=int(self.data.teacher["dim"]),
        )
        seed_everything(preset.seed)
        self.model = CellTextModel(config)
        latest = self.run_dir.latest(clean=self.main) if self.resume else None
        if latest is not None:
            self.model.load_state_dict(load_state_dict_file(latest), strict=True)
            self.state = TrainState.load(latest / "train_state")
            self.resume_dir, self.resumed_from = latest / "train_state", latest.name
            log.info("resuming from %s (stage %s, step %d)", latest.name, self.state.stage,
                     self.state.step)  # fmt: skip
        elif self.init is not None:
            self._load_init(load_checkpoint(self.init).model.state_dict())

    def _load_init(self, weights: dict[str, torch.Tensor]) -> None:
        """Start from ``--init``'s weights. A part (core or decoder) whose architecture
        differs from the preset's starts fresh, if a requested stage trains it (a new core
        design on a trained decoder: ``--init DECODER_RUN --stage core,finetune``)."""
        own = self.model.state_dict()
        trains = {"core": {"core"}, "decoder": {"decoder", "finetune", "correct"}}
        stages = set(self._stages(self.preset))
        for part in ("core", "decoder"):
            mine = {k: v for k, v in own.items() if k.startswith(part + ".")}
            theirs = {k: v for k, v in weights.items() if k.startswith(part + ".")}
            same = mine.keys() == theirs.keys() and all(
                mine[k].shape == theirs[k].shape for k in mine
            )
            if same:
                own.update(theirs)
            elif trains[part] & stages:
                log.warning("--init %s: its %s has another architecture; it starts fresh",
                            self.init, part)  # fmt: skip
            else:
                raise ValueError(
                    f"--init {self.init}: its {part} has another architecture than the "
                    f"preset's, and no requested stage trains the {part}"
                )
        self.model.load_state_dict(own, strict=True)
        log.info("initialised from %s", self.init)

    def _open_tracker(self) -> None:
        preset, record = self.preset, self.run_dir.record
        override = self.register_override
        if override is None:  # a resumed run keeps the options it started with
            override = record.get("register")
        register = preset.registry.register if override is None else override
        if not (register and self.main):
            return
        from celltext.registry.metadata import git_info
        from celltext.registry.tracking import MlflowTracker

        self.tracker = MlflowTracker(
            preset.registry.experiment,
            run_name=f"{preset.name}-seed{preset.seed}",
            run_id=record.get("mlflow_run_id"),
        )
        self.registering = True
        if record.get("mlflow_run_id") is None:
            self.run_dir.save_record(mlflow_run_id=self.tracker.run_id)
            self.tracker.log_params(flatten(preset.to_dict()))
        self.tracker.set_tags(
            {
                "dataset_version": self.data.release["version"],
                "dataset_sha256": self.data.release["sha256"],
                "preset": preset.name,
                "seed": preset.seed,
                **{f"git_{k}": v for k, v in git_info().items()},
            }
        )

    # -- fit --------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Run the remaining stages, write ``final/`` and register it if configured."""
        try:
            for index, name in enumerate(self.run_dir.record["stages"]):
                if name in self.state.completed_stages:
                    continue
                if not (self.state.stage == name and self.state.stage_done):
                    self._fit_stage(index, name)
                self.state.completed_stages.append(name)
                self.resume_dir = None
            result = self._finish()
        except BaseException as exc:
            if self.registering:
                self.tracker.finish("FAILED" if isinstance(exc, Exception) else "KILLED")
            raise
        self.dist.wait_for_everyone()
        return result

    def _fit_stage(self, index: int, name: str) -> None:
        stage = STAGE_BUILDERS[name](
            self.preset, self.data, self.model, self.tokenizer, run_dir=self.run_dir.path
        )
        if self.state.stage != name:  # a new stage (a resumed one keeps its state)
            self.resume_dir = None
            self.state = TrainState(
                stage=name,
                completed_stages=list(self.state.completed_stages),
                elapsed_s=self.state.elapsed_s,
                metrics=dict(self.state.metrics),
                world_size=self.state.world_size,
            )
        log.info("stage %s: %d training examples", name, stage.task.n_train)
        run = StageRun(
            name=name,
            task=stage.task,
            module=stage.module,
            args=stage.args,
            seed=stage_seed(self.preset.seed, name),
            state=self.state,
            resume_dir=self.resume_dir,
            save=lambda state, optimizer, scheduler, best: self.save_checkpoint(
                index, state, optimizer, scheduler, best
            ),
            log_metrics=self.tracker.log_metrics,
            progress=self.progress,
        )
        self.state = run_stage(run)

    def save_checkpoint(self, index: int, state: TrainState, optimizer, scheduler, best) -> None:
        """A resumable checkpoint of stage ``index`` at ``state`` (main process only)."""
        if not self.main:
            return

        def write_state(directory: Path) -> None:
            state.save(directory)
            save_optimizer(optimizer, directory)
            save_scheduler(scheduler, directory)
            save_rng(directory)
            if best is not None and not state.stage_done:
                save_tensors(directory / "best.safetensors", best, fsync=False)

        name = f"{index}-{state.stage}-{state.step:07d}"
        self.run_dir.save(
            name, self.model, self.tokenizer, self._config(), self._metadata(state), write_state
        )
        self.tracker.log_metrics(system_metrics(), state.step)

    def _config(self) -> dict[str, Any]:
        return {"preset": self.preset.to_dict(), "preset_hash": self.preset.config_hash()}

    def _metadata(self, state: TrainState, final: bool = False) -> dict[str, Any]:
        done = list(state.completed_stages)
        if not final and state.stage_done:
            done.append(state.stage)
        return {
            "dataset": {**self.data.release, "fingerprint": self.data.fingerprint},
            "metrics": headline_metrics(state.metrics),
            "training": {
                "preset": self.preset.name,
                "preset_hash": self.preset.config_hash(),
                "seed": self.preset.seed,
                "stages_completed": done,
                "stage": state.stage,
                "step": state.step,
                "world_size": state.world_size,
            },
            "training_time_s": round(state.elapsed_s, 3),
        }

    def _finish(self) -> TrainResult:
        final, state = self.run_dir.final, self.state
        dtype = torch.float16 if self.preset.registry.export_dtype == "float16" else None
        metrics = headline_metrics(state.metrics)
        registered, sha = None, ""
        if self.main:
            save_checkpoint(
                final, self.model, self.tokenizer, self._config(),
                self._metadata(state, final=True), dtype=dtype,
            )  # fmt: skip
            self.run_dir.save_record(status="finished")
            if self.registering:
                registered = self._register(final, metrics)
            sha = json.loads((final / "metadata.json").read_text())["weights_sha256"]
        return TrainResult(
            checkpoint=final,
            run_dir=self.out,
            metrics=metrics,
            weights_sha256=sha,
            elapsed_s=state.elapsed_s,
            stages=list(state.completed_stages),
            registered=registered,
            resumed_from=self.resumed_from,
            is_main_process=self.main,
        )

    def _register(self, final: Path, metrics: dict[str, float]) -> dict[str, Any]:
        from celltext.registry.models import ModelRegistry

        preset, state = self.preset, self.state
        self.tracker.log_metrics(
            {**metrics, **system_metrics(), "train/time_s": state.elapsed_s}, state.step
        )
        self.tracker.log_artifacts(final, "checkpoint")
        self.tracker.finish("FINISHED")
        info = ModelRegistry().register(
            preset.registry.model_name,
            self.tracker.run_id,
            final,
            alias=preset.registry.promote,
            description=f"preset {preset.name}, seed {preset.seed}",
        )
        return {k: info[k] for k in ("name", "version", "aliases", "run_id")}


def headline_metrics(stage_metrics: dict[str, float]) -> dict[str, float]:
    """Stage-prefixed metrics plus un-prefixed headline validation metrics: ``val/cosine``
    from the core, ``val/token_acc``/``val/perplexity`` from the last decoder stage."""
    out = {k: float(v) for k, v in stage_metrics.items() if v is not None}
    for key in ("val/cosine", "val/retrieval_top1"):
        if f"core/{key}" in out:
            out[key] = out[f"core/{key}"]
    for key in ("val/token_acc", "val/perplexity", "val/exact_match"):
        for stage in ("correct", "finetune", "decoder"):
            if f"{stage}/{key}" in out:
                out[key] = out[f"{stage}/{key}"]
                break
    return out


def train(preset: Preset | None, out: str | Path | None = None, **kwargs: Any) -> TrainResult:
    """Train ``preset`` into ``out`` (see :class:`Trainer` for the options)."""
    trainer = Trainer(preset, out, **kwargs)
    trainer.setup()
    return trainer.fit()
