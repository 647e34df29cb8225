"""One trainer for the three stages: prepare a run directory, train, checkpoint, register.

Run directory (``--out``, default ``<celltext home>/runs/<preset>-seed<seed>``)::

    run.json                 preset, stages, status, MLflow run id
    tokenizer.json           trained once on the training texts
    data.safetensors/.json   embedded and tokenised data (a resume never re-embeds)
    checkpoints/<i>-<stage>-<step>/   resumable checkpoints (with train_state/)
    checkpoints/LATEST       name of the newest complete checkpoint
    final/                   the result (export dtype, no train_state)

``train(preset)`` runs the enabled stages in order: ``decoder`` (teacher embedding of a
text -> the text), ``core`` (question embedding -> answer embedding), ``finetune``
(decoder on the core's predictions). ``train(preset, resume=True)`` continues from the
newest checkpoint that verifies; finished stages are skipped, the stage in progress
continues at its step with the same optimizer, scheduler, RNG and data order, so the
result is bit-identical to an uninterrupted run (on CPU, same thread count).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from celltext.paths import home_dir
from celltext.registry.checkpoint import (
    CheckpointIntegrityError,
    load_checkpoint,
    load_state_dict_file,
    remove_stale_temporaries,
    save_checkpoint,
    verify_checkpoint,
)
from celltext.registry.tensorio import save_tensors, write_bytes_atomic, write_json_atomic
from celltext.registry.tracking import NullTracker, flatten, system_metrics
from celltext.training.args import STAGES, Preset
from celltext.training.data import (
    DATA_JSON,
    RunData,
    build_run_data,
    concat_tables,
    load_run_data,
    save_run_data,
    select_texts,
)
from celltext.training.loop import StageRun, run_stage
from celltext.training.reproducibility import configure_determinism, seed_everything, stage_seed
from celltext.training.state import TrainState, save_optimizer, save_rng, save_scheduler
from celltext.training.tasks import CoreTask, DecoderTask, stage_prototypes

log = logging.getLogger(__name__)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no fork warnings from tokenizers

RUN_FILE = "run.json"
TOKENIZER_FILE = "tokenizer.json"
LATEST = "LATEST"
KEEP_CHECKPOINTS = 2


class RunDirError(RuntimeError):
    """The run directory is in a state that does not allow the requested action."""


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
    extra: dict[str, Any] = field(default_factory=dict)

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
            **self.extra,
        }


def default_run_dir(preset: Preset) -> Path:
    """``<celltext home>/runs/<preset>-seed<seed>``."""
    return home_dir() / "runs" / f"{preset.name}-seed{preset.seed}"


def _load_teacher(name: str):
    from celltext.teacher import load_teacher

    return load_teacher(name)


def _load_release(version: str):
    from celltext.data.release import load_release

    return load_release(version)


# -- run directory --------------------------------------------------------------------------
def _latest_checkpoint(out: Path, clean: bool = True) -> Path | None:
    """The newest checkpoint that verifies (LATEST first, then by name, newest first).

    ``clean`` removes what killed writers left behind (main process only).
    """
    root = out / "checkpoints"
    if not root.is_dir():
        return None
    if clean:
        remove_stale_temporaries(root)
    candidates = sorted((p for p in root.iterdir() if p.is_dir()), reverse=True)
    pointer = root / LATEST
    if pointer.is_file():
        named = root / pointer.read_text().strip()
        candidates = [named] + [c for c in candidates if c != named]
    for path in candidates:
        try:
            verify_checkpoint(path, include_train_state=True)
            return path
        except CheckpointIntegrityError as exc:
            log.warning("skipping damaged checkpoint: %s", exc)
    return None


def _prune(out: Path, keep: str) -> None:
    root = out / "checkpoints"
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for old in dirs[:-KEEP_CHECKPOINTS]:
        if old.name != keep:
            shutil.rmtree(old, ignore_errors=True)


def _prepare_run_dir(
    preset: Preset, out: Path, resume: bool, overwrite: bool, stages, register: bool | None = None
):
    run_file = out / RUN_FILE
    if resume and run_file.is_file():
        stored = json.loads(run_file.read_text())
        stored_preset = Preset.from_dict(stored["preset"])
        if preset is not None and preset.config_hash() != stored_preset.config_hash():
            raise RunDirError(
                f"{out} was started with a different preset ({stored_preset.name}, hash "
                f"{stored_preset.config_hash()[:12]}); resume without changing it"
            )
        return stored_preset, stored
    if run_file.is_file() and not resume:
        if not overwrite:
            raise RunDirError(
                f"{out} already holds a run; pass --resume to continue it "
                "or --overwrite to start over"
            )
        shutil.rmtree(out)
    if preset is None:
        raise RunDirError(f"nothing to resume in {out} (no {RUN_FILE}); pass --preset")
    out.mkdir(parents=True, exist_ok=True)
    stored = {
        "preset": preset.to_dict(),
        "preset_hash": preset.config_hash(),
        "stages": stages,
        "register": register,  # the --register/--no-register choice; a resume keeps it
        "status": "running",
        "mlflow_run_id": None,
    }
    write_json_atomic(run_file, stored)
    return preset, stored


# -- the trainer ----------------------------------------------------------------------------
class Trainer:
    """Trains a :class:`Preset` into a run directory (see the module docstring)."""

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
        init: str | Path | None = None,
    ):
        if preset is None and out is None:
            raise RunDirError("need a preset or a run directory to resume")
        self.out = Path(out) if out is not None else default_run_dir(preset)
        self.resume, self.overwrite = resume, overwrite
        self.requested_stages = stages
        self.register_override = register
        self.progress = progress
        self.teacher = teacher
        self.init = Path(init) if init is not None else None
        self.preset = preset
        self.tracker: Any = NullTracker()

    # -- setup ------------------------------------------------------------------------------
    def _stages(self, preset: Preset) -> list[str]:
        enabled = preset.enabled_stages()
        if not self.requested_stages:
            return enabled
        unknown = [s for s in self.requested_stages if s not in STAGES]
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}; choose from {list(STAGES)}")
        return [s for s in STAGES if s in self.requested_stages]

    def _data(self, preset: Preset, main: bool, wait) -> tuple[RunData, Any]:
        from celltext.models.tokenizer import CellTokenizer

        tok_file, data_file = self.out / TOKENIZER_FILE, self.out / DATA_JSON
        if main and not (tok_file.is_file() and data_file.is_file()):
            t0 = time.perf_counter()
            release = _load_release(preset.data.release)
            teacher = self.teacher or _load_teacher(preset.teacher)
            texts = select_texts(release, preset.data)["decoder_texts"]
            if not tok_file.is_file():
                tokenizer = CellTokenizer.train(texts, vocab_size=preset.vocab_size)
                write_bytes_atomic(tok_file, tokenizer.to_str().encode())
            tokenizer = CellTokenizer.load(tok_file)
            data = build_run_data(release, teacher, tokenizer, preset.data, self.progress)
            save_run_data(data, self.out)
            log.info("data prepared in %.1fs", time.perf_counter() - t0)
        wait()
        return load_run_data(self.out), CellTokenizer.load(tok_file)

    def _system_config(self, preset: Preset, data: RunData, tokenizer: Any):
        from celltext.models.registry import resolve
        from celltext.models.system import SystemConfig, ensure_registered

        ensure_registered()
        dec_fields = resolve(preset.decoder.name, "decoder").config_cls.__dataclass_fields__
        dec = {**preset.decoder.config, "vocab_size": tokenizer.vocab_size}
        for key in ("pad_id", "bos_id", "eos_id"):
            if key in dec_fields:
                dec[key] = getattr(tokenizer, key)
        return SystemConfig(
            core=preset.core.name,
            core_config=dict(preset.core.config),
            decoder=preset.decoder.name,
            decoder_config=dec,
            teacher_id=data.teacher["id"],
            dim=int(data.teacher["dim"]),
        )

    def _tracker(self, preset: Preset, stored: dict[str, Any], main: bool):
        override = self.register_override
        if override is None:  # a resumed run keeps the options it started with
            override = stored.get("register")
        register = preset.registry.register if override is None else override
        if not (register and main):
            return NullTracker(), False
        from celltext.registry.tracking import MlflowTracker

        tracker = MlflowTracker(
            preset.registry.experiment,
            run_name=f"{preset.name}-seed{preset.seed}",
            run_id=stored.get("mlflow_run_id"),
        )
        if stored.get("mlflow_run_id") is None:
            stored["mlflow_run_id"] = tracker.run_id
            write_json_atomic(self.out / RUN_FILE, stored)
            tracker.log_params(flatten(preset.to_dict()))
        return tracker, True

    # -- tasks ------------------------------------------------------------------------------
    def _task(self, name: str, preset: Preset, data: RunData, model, tokenizer):
        if name == "decoder":
            cfg = preset.stages.decoder
            protos = stage_prototypes(cfg, model.decoder, data.texts, data.texts, data.val_texts)
            task = DecoderTask(
                data.texts,
                data.val_texts,
                noise_std=cfg.noise_std,
                label_smoothing=cfg.label_smoothing,
                generate_samples=cfg.generate_samples,
                tokenizer=tokenizer,
                prototypes=protos[0],
                val_prototypes=protos[1],
            )
            return task, model.decoder, cfg.train
        if name == "core":
            cfg = preset.stages.core
            task = CoreTask(
                data.train_pairs.q_emb,
                data.train_pairs.answers.emb,
                data.val_pairs.q_emb,
                data.val_pairs.answers.emb,
                cfg.cosine_weight,
                cfg.mse_weight,
                cfg.contrastive_weight,
                cfg.temperature,
                val_answers=data.val_pairs.answers.texts,
                train_answers=data.train_pairs.answers.texts if cfg.negatives == "bank" else None,
            )
            return task, model.core, cfg.train
        cfg = preset.stages.finetune
        pred_train = _predict(model.core, data.train_pairs.q_emb)  # (N, D)
        pred_val = _predict(model.core, data.val_pairs.q_emb)
        train_table, inputs = data.train_pairs.answers, pred_train
        if cfg.include_teacher_pairs:
            train_table = concat_tables(train_table, data.train_pairs.answers)
            inputs = torch.cat([pred_train, data.train_pairs.answers.emb])
        protos = stage_prototypes(
            cfg, model.decoder, data.texts, train_table, data.val_pairs.answers
        )
        task = DecoderTask(
            train_table,
            data.val_pairs.answers,
            train_inputs=inputs,
            val_inputs=pred_val,
            noise_std=cfg.noise_std,
            label_smoothing=cfg.label_smoothing,
            tokenizer=tokenizer,
            prototypes=protos[0],
            val_prototypes=protos[1],
        )
        return task, model.decoder, cfg.train

    # -- checkpoints ------------------------------------------------------------------------
    def _saver(self, model, tokenizer, preset, data, stage_index: int, main: bool):
        def save(state: TrainState, optimizer, scheduler, best) -> None:
            if not main:
                return
            name = f"{stage_index}-{state.stage}-{state.step:07d}"

            def write_state(directory: Path) -> None:
                state.save(directory)
                save_optimizer(optimizer, directory)
                save_scheduler(scheduler, directory)
                save_rng(directory)
                if best is not None and not state.stage_done:
                    save_tensors(directory / "best.safetensors", best, fsync=False)

            path = self.out / "checkpoints" / name
            save_checkpoint(
                path,
                model,
                tokenizer,
                self._config(preset),
                self._metadata(preset, data, state),
                train_state=write_state,
                durable=False,
            )
            write_bytes_atomic(self.out / "checkpoints" / LATEST, name.encode())
            _prune(self.out, keep=name)
            self.tracker.log_metrics(system_metrics(), state.step)

        return save

    @staticmethod
    def _config(preset: Preset) -> dict[str, Any]:
        return {"preset": preset.to_dict(), "preset_hash": preset.config_hash()}

    @staticmethod
    def _metadata(preset: Preset, data: RunData, state: TrainState) -> dict[str, Any]:
        return {
            "dataset": {**data.release, "fingerprint": data.fingerprint},
            "metrics": headline_metrics(state.metrics),
            "training": {
                "preset": preset.name,
                "preset_hash": preset.config_hash(),
                "seed": preset.seed,
                "stages_completed": list(state.completed_stages)
                + ([state.stage] if state.stage_done else []),
                "stage": state.stage,
                "step": state.step,
                "world_size": state.world_size,
            },
            "training_time_s": round(state.elapsed_s, 3),
        }

    # -- main -------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        """Train (or resume) to the final checkpoint; register it if configured."""
        from accelerate.state import PartialState

        # cpu=True on a machine without CUDA: several processes then form a gloo group
        dist = PartialState(cpu=not torch.cuda.is_available())
        main = dist.is_main_process
        if not main:  # one process reports; the others only warn
            logging.getLogger("celltext").setLevel(logging.WARNING)
        fresh = not (self.out / RUN_FILE).is_file()
        preset, stored = self._prepare_run_dir_all(main, dist)
        configure_determinism(preset.threads)
        stages = stored["stages"]
        try:
            data, tokenizer = self._data(preset, main, dist.wait_for_everyone)
        except Exception:
            if fresh and main:  # nothing was trained: leave no run behind to block a retry
                (self.out / RUN_FILE).unlink(missing_ok=True)
            raise
        model, state, resume_dir, resumed_from = self._model_and_state(
            preset, data, tokenizer, main
        )
        self.tracker, registering = self._tracker(preset, stored, main)
        if registering:
            self.tracker.set_tags(
                {
                    "dataset_version": data.release["version"],
                    "dataset_sha256": data.release["sha256"],
                    "preset": preset.name,
                    "seed": preset.seed,
                    **{f"git_{k}": v for k, v in _git().items()},
                }
            )
        state.world_size = dist.num_processes
        try:
            for index, name in enumerate(stages):
                if name in state.completed_stages:
                    continue
                if state.stage == name and state.stage_done:
                    state.completed_stages.append(name)
                    continue
                state = self._run_one(
                    index,
                    name,
                    preset,
                    data,
                    model,
                    tokenizer,
                    state,
                    resume_dir if state.stage == name else None,
                    main,
                )
                state.completed_stages.append(name)
                resume_dir = None
            result = self._finish(preset, data, model, tokenizer, state, stored, main)
        except BaseException as exc:
            if registering:
                self.tracker.finish("FAILED" if isinstance(exc, Exception) else "KILLED")
            raise
        result.resumed_from = resumed_from
        result.is_main_process = main
        dist.wait_for_everyone()
        return result

    def _prepare_run_dir_all(self, main: bool, dist) -> tuple[Preset, dict[str, Any]]:
        if main:
            stages = self._stages(self.preset) if self.preset is not None else None
            preset, stored = _prepare_run_dir(
                self.preset, self.out, self.resume, self.overwrite, stages, self.register_override
            )
            if stored.get("stages") is None:
                stored["stages"] = self._stages(preset)
        dist.wait_for_everyone()
        if not main:
            stored = json.loads((self.out / RUN_FILE).read_text())
            preset = Preset.from_dict(stored["preset"])
        return preset, stored

    def _model_and_state(self, preset: Preset, data: RunData, tokenizer: Any, main: bool):
        from celltext.models.system import CellTextModel

        seed_everything(preset.seed)
        model = CellTextModel(self._system_config(preset, data, tokenizer))
        state, resume_dir, resumed_from = TrainState(), None, None
        latest = _latest_checkpoint(self.out, clean=main) if self.resume else None
        if latest is not None:
            model.load_state_dict(load_state_dict_file(latest), strict=True)
            state = TrainState.load(latest / "train_state")
            resume_dir, resumed_from = latest / "train_state", latest.name
            log.info("resuming from %s (stage %s, step %d)", latest.name, state.stage, state.step)
        elif self.init is not None:
            init = load_checkpoint(self.init)
            model.load_state_dict(init.model.state_dict(), strict=True)
            log.info("initialised from %s", self.init)
        return model, state, resume_dir, resumed_from

    def _run_one(self, index, name, preset, data, model, tokenizer, state, resume_dir, main):
        task, module, args = self._task(name, preset, data, model, tokenizer)
        if resume_dir is None:
            state = TrainState(
                stage=name,
                completed_stages=list(state.completed_stages),
                elapsed_s=state.elapsed_s,
                metrics=dict(state.metrics),
                world_size=state.world_size,
            )
        log.info("stage %s: %d training examples", name, task.n_train)
        run = StageRun(
            name=name,
            task=task,
            module=module,
            args=args,
            seed=stage_seed(preset.seed, name),
            state=state,
            resume_dir=resume_dir,
            save=self._saver(model, tokenizer, preset, data, index, main),
            log_metrics=self.tracker.log_metrics,
            progress=self.progress,
        )
        return run_stage(run)

    def _finish(self, preset, data, model, tokenizer, state, stored, main) -> TrainResult:
        final = self.out / "final"
        dtype = torch.float16 if preset.registry.export_dtype == "float16" else None
        metrics = headline_metrics(state.metrics)
        registered = None
        if main:
            meta = self._metadata(preset, data, state)
            meta["training"]["stages_completed"] = list(state.completed_stages)
            save_checkpoint(final, model, tokenizer, self._config(preset), meta, dtype=dtype)
            stored["status"] = "finished"
            write_json_atomic(self.out / RUN_FILE, stored)
            if not isinstance(self.tracker, NullTracker):
                registered = self._register(preset, final, metrics, state)
        sha = json.loads((final / "metadata.json").read_text())["weights_sha256"] if main else ""
        return TrainResult(
            checkpoint=final,
            run_dir=self.out,
            metrics=metrics,
            weights_sha256=sha,
            elapsed_s=state.elapsed_s,
            stages=list(state.completed_stages),
            registered=registered,
        )

    def _register(self, preset: Preset, final: Path, metrics: dict[str, float], state) -> dict:
        from celltext.registry.models import ModelRegistry

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
        return {
            "name": info["name"],
            "version": info["version"],
            "aliases": info["aliases"],
            "run_id": info["run_id"],
        }


@torch.no_grad()
def _predict(core: torch.nn.Module, q_emb: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """The (frozen) core's predictions for question embeddings (N, D), in batches."""
    core.eval()
    return torch.cat([core(q_emb[i : i + batch]).float() for i in range(0, len(q_emb), batch)])


def _git() -> dict[str, Any]:
    from celltext.registry.metadata import git_info

    return git_info()


def headline_metrics(stage_metrics: dict[str, float]) -> dict[str, float]:
    """Stage-prefixed metrics plus un-prefixed headline validation metrics: ``val/cosine``
    from the core, ``val/token_acc``/``val/perplexity`` from the last decoder stage."""
    out = {k: float(v) for k, v in stage_metrics.items() if v is not None}
    for key in ("val/cosine", "val/retrieval_top1"):
        if f"core/{key}" in out:
            out[key] = out[f"core/{key}"]
    for key in ("val/token_acc", "val/perplexity", "val/exact_match"):
        for stage in ("finetune", "decoder"):
            if f"{stage}/{key}" in out:
                out[key] = out[f"{stage}/{key}"]
                break
    return out


def train(preset: Preset | None, out: str | Path | None = None, **kwargs: Any) -> TrainResult:
    """Train ``preset`` into ``out`` (see :class:`Trainer` for the options)."""
    return Trainer(preset, out, **kwargs).run()
