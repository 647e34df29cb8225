"""The ablation study: every core and every decoder, same release, seed and budget.

Protocol (``celltext ablate``):

1. **Decoders.** For each decoder, train the ``decoder`` stage only (teacher embedding of a
   text -> the text) from the base preset, with the budget's step count. Evaluate the
   decoder alone on each split: decode the teacher embeddings of the reference answers
   (BLEU, chrF, exact match, embedding preservation, coherence, batch-1 decode latency).
2. **Cores.** For each core, train the ``core`` stage only (question embedding -> answer
   embedding). Evaluate it end to end with the *same* trained decoder (``base_decoder``
   from step 1, spliced in; the tokenizer is identical because both runs train it on the
   same texts) through the generative path without fallback, so the only difference
   between rows is the core. Core cosine and answer top-1 measure the core alone.
3. **Baseline.** The retrieval baseline on the same splits and pairs.

Results go to ``<out>/ablation.json``, MLflow (experiment ``celltext-ablation``, one run
per variant), PNG plots and the ``ablation`` section of ``docs/PERFORMANCE_ANALYSIS.md``
(written by :mod:`celltext.reports.ablation`; this module measures, that one writes).

By default every registered core and decoder takes part (:func:`celltext.models.zoo.families`,
the one list of architectures).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celltext.config import Config, require
from celltext.evaluation.evaluate import (
    evaluate_decoder,
    evaluate_system,
    measure_latency,
    select_pairs,
)
from celltext.paths import DEFAULT_RELEASE

log = logging.getLogger(__name__)

EVAL_SPLITS = ("val", "test_paraphrase", "test_unseen")

# Named budgets: optimizer steps per stage, training pairs, evaluation pairs per split.
# "full" is sized for ~20-30 minutes on a 2-core CPU (see docs/PERFORMANCE_ANALYSIS.md).
BUDGETS: dict[str, dict[str, int]] = {
    "tiny": {"decoder_steps": 3, "core_steps": 3, "max_train_pairs": 64, "eval_limit": 8,
             "latency_samples": 3},
    "small": {"decoder_steps": 60, "core_steps": 60, "max_train_pairs": 2000, "eval_limit": 64,
              "latency_samples": 8},
    "full": {"decoder_steps": 300, "core_steps": 300, "max_train_pairs": 0, "eval_limit": 300,
             "latency_samples": 24},
}  # fmt: skip


@dataclass
class AblationConfig(Config):
    """What the ablation trains and evaluates."""

    preset: str = "quick"
    """Base training preset (optimiser settings, decoder/core configs if they match)."""
    release: str = DEFAULT_RELEASE
    """Data release version."""
    seed: int = 0
    """One seed for every run."""
    budget: str = "full"
    """Named budget (``tiny``, ``small``, ``full``); the fields below override it if > 0."""
    decoder_steps: int = 0
    core_steps: int = 0
    max_train_pairs: int = -1
    """Training pairs per run (0: all; -1: the budget's value)."""
    eval_limit: int = 0
    latency_samples: int = 0
    cores: tuple[str, ...] = ()
    """Core families (empty: every registered core)."""
    decoders: tuple[str, ...] = ()
    """Decoder families (empty: every registered decoder)."""
    base_decoder: str = "ret"
    """The decoder every core is evaluated with (must be among the decoders)."""
    splits: tuple[str, ...] = EVAL_SPLITS
    match_sizes: bool = True
    """Give every architecture the size fields of the preset's own core/decoder config
    (:func:`matched_config`); False: registered defaults."""
    threads: int = 2
    out: str = ""
    """Run directory (default ``<celltext home>/ablation/<release>-seed<seed>-<budget>``)."""
    doc: str = "docs/PERFORMANCE_ANALYSIS.md"
    figures: str = "docs/figures"
    mlflow: bool = True
    command: str = ""
    """The command line, written into the document."""

    def validate(self) -> None:
        require(self.budget in BUDGETS, "budget", f"must be one of {sorted(BUDGETS)}")
        if self.decoders:
            require(self.base_decoder in self.decoders, "base_decoder", "must be in decoders")
        require(bool(self.splits), "splits", "need at least one split")

    def with_architectures(self) -> AblationConfig:
        """This config with empty ``cores``/``decoders`` filled from the model registry,
        every name checked against it."""
        import celltext.models  # noqa: F401  (registers every architecture)
        from celltext.models.zoo import families

        cores, decoders = self.cores or families("core"), self.decoders or families("decoder")
        for kind, names in (("core", cores), ("decoder", decoders)):
            unknown = sorted(set(names) - set(families(kind)))  # type: ignore[arg-type]
            require(not unknown, f"{kind}s", f"not registered: {', '.join(unknown)}")
        require(self.base_decoder in decoders, "base_decoder", "must be among the decoders")
        return self.replace(cores=cores, decoders=decoders)

    def resolved(self) -> dict[str, int]:
        """The effective budget: the named one with explicit overrides applied."""
        b = dict(BUDGETS[self.budget])
        for key in ("decoder_steps", "core_steps", "eval_limit", "latency_samples"):
            if getattr(self, key) > 0:
                b[key] = getattr(self, key)
        if self.max_train_pairs >= 0:
            b["max_train_pairs"] = self.max_train_pairs
        return b

    def out_dir(self) -> Path:
        """Where runs and ``ablation.json`` go."""
        from celltext.paths import home_dir

        name = f"{self.release}-seed{self.seed}-{self.budget}"
        return Path(self.out) if self.out else home_dir() / "ablation" / name


# -- training ----------------------------------------------------------------------------------
def variant_preset(cfg: AblationConfig, core: str, decoder: str, stage: str) -> Any:
    """The base preset with one core/decoder, one stage and the budget applied."""
    from celltext.training.args import STAGES, Preset
    from celltext.training.presets import load_preset

    budget = cfg.resolved()
    base = load_preset(cfg.preset)
    data = base.to_dict()
    data.update(seed=cfg.seed, threads=cfg.threads,
                name=f"ablation-{stage}-{core if stage == 'core' else decoder}")  # fmt: skip
    data["data"].update(release=cfg.release, max_train_pairs=budget["max_train_pairs"])
    data["registry"]["register"] = False
    data["core"]["name"], data["decoder"]["name"] = core, decoder
    if cfg.match_sizes:
        data["core"]["config"] = matched_config(base.core.name, base.core.config, core, "core")
        data["decoder"]["config"] = matched_config(
            base.decoder.name, base.decoder.config, decoder, "decoder"
        )
    else:  # registered defaults for every architecture other than the preset's own
        if base.core.name != core:
            data["core"]["config"] = {}
        if base.decoder.name != decoder:
            data["decoder"]["config"] = {}
    for name in STAGES:
        data["stages"][name]["enabled"] = name == stage
    data["stages"][stage]["train"]["max_steps"] = budget[f"{stage}_steps"]
    return Preset.from_dict(data)


_NOT_COPIED = {"dim", "vocab_size", "pad_id", "bos_id", "eos_id"}  # set by the trainer


def matched_config(base_name: str, base_config: dict, target: str, kind: str) -> dict:
    """``target``'s config overrides that copy the fields it shares with the base
    architecture's config (the core configs share their ``cct``, ``lattice`` and ``mamba``
    sub-configs by name), so every variant is about as wide and deep as the preset's own
    model; the base architecture itself keeps its config. A sub-config that the target
    switches off by default (``lattice3d``'s ``mamba.n_layers = 0``) stays off. A
    combination the target's config rejects falls back to its registered defaults."""
    from celltext.models.zoo import resolve

    entry = resolve(target, kind)  # type: ignore[arg-type]
    if resolve(base_name, kind).family == entry.family:  # type: ignore[arg-type]
        return dict(base_config)
    defaults = entry.config_cls().to_dict()
    out = {}
    for name, default in defaults.items():
        if name in _NOT_COPIED or name not in base_config:
            continue
        if isinstance(default, dict) and default.get("n_layers") == 0:
            continue
        out[name] = base_config[name]
    try:
        entry.config_cls.from_dict(out)
    except (ValueError, TypeError) as exc:  # ConfigError is a ValueError
        log.warning("ablation: %s with the preset's sizes is invalid (%s); defaults", target, exc)
        return {}
    return out


def train_variant(preset: Any, out: Path, teacher: Any) -> dict[str, Any]:
    """Train ``preset`` into ``out`` (fresh) and return checkpoint path and wall time."""
    from celltext.training.trainer import train

    t0 = time.perf_counter()
    result = train(preset, out, overwrite=True, register=False, progress=False, teacher=teacher)
    return {
        "checkpoint": str(result.checkpoint),
        "train_time_s": round(time.perf_counter() - t0, 2),
        "stage_time_s": round(result.elapsed_s, 2),
        "train_metrics": result.metrics,
    }


# -- evaluation --------------------------------------------------------------------------------
def _split_pairs(release: Any, cfg: AblationConfig) -> dict[str, list[Any]]:
    limit = cfg.resolved()["eval_limit"]
    return {s: select_pairs(release.pairs(s), limit, seed=cfg.seed) for s in cfg.splits}


def _compose(core_ckpt: Any, decoder_ckpt: Any) -> Any:
    """The core run's model with the decoder run's trained decoder spliced in."""
    if core_ckpt.tokenizer.to_str() != decoder_ckpt.tokenizer.to_str():
        raise ValueError("core and decoder runs trained different tokenizers")
    model = core_ckpt.model
    model.decoder.load_state_dict(decoder_ckpt.model.decoder.state_dict(), strict=True)
    return model


def evaluate_variants(
    cfg: AblationConfig,
    release: Any,
    trained: dict[str, dict[str, Any]],
    teacher: Any,
    on_step: Callable[[str], None],
) -> dict[str, Any]:
    """Evaluate every trained decoder (alone), every core (with the base decoder) and the
    retrieval baseline on each split."""
    from celltext.evaluation.systems import GenerativeSystem, RetrievalSystem
    from celltext.registry.checkpoint import load_checkpoint

    budget = cfg.resolved()
    lat_n = budget["latency_samples"]
    pairs = _split_pairs(release, cfg)
    bank = _answer_bank(release, pairs)
    results: dict[str, Any] = {"decoders": {}, "cores": {}, "retrieval": {}}
    for dec in cfg.decoders:
        on_step(f"evaluate decoder {dec}")
        ckpt = load_checkpoint(trained[f"decoder/{dec}"]["checkpoint"])
        system = GenerativeSystem.of_model(ckpt.model, ckpt.tokenizer, teacher, name=dec)
        results["decoders"][dec] = {
            "info": system.info(),
            **trained[f"decoder/{dec}"],
            "splits": {s: _slim(evaluate_decoder(system, p, teacher, lat_n)) for s, p in
                       pairs.items()},
        }  # fmt: skip
    dec_ckpt = load_checkpoint(trained[f"decoder/{cfg.base_decoder}"]["checkpoint"])
    for core in cfg.cores:
        on_step(f"evaluate core {core}")
        ckpt = load_checkpoint(trained[f"core/{core}"]["checkpoint"])
        system = GenerativeSystem.of_model(
            _compose(ckpt, dec_ckpt), ckpt.tokenizer, teacher, name=core
        )
        results["cores"][core] = {
            "info": system.info(),
            **trained[f"core/{core}"],
            "core_latency_ms": _core_latency(system, pairs, lat_n),
            "splits": {s: _slim(evaluate_system(system, p, teacher, lat_n, bank)) for s, p in
                       pairs.items()},
        }  # fmt: skip
    on_step("evaluate retrieval baseline")
    retrieval = RetrievalSystem.from_release(release, teacher)
    results["retrieval"] = {
        "info": retrieval.info(),
        "splits": {s: _slim(evaluate_system(retrieval, p, teacher, lat_n, bank)) for s, p in
                   pairs.items()},
    }  # fmt: skip
    return results


def _answer_bank(release: Any, pairs: dict[str, list[Any]]) -> list[str]:
    answers = [p.answer for p in release.pairs("train")]
    for split_pairs in pairs.values():
        answers.extend(p.answer for p in split_pairs)
    return list(dict.fromkeys(answers))


def _core_latency(system: Any, pairs: dict[str, list[Any]], n: int) -> dict[str, float]:
    import numpy as np

    first = next(iter(pairs.values()))[:n]
    q = np.asarray(system.teacher.encode([p.question for p in first]), dtype=np.float32)
    return measure_latency(
        lambda i: system.core_embeddings(q[int(i) : int(i) + 1]), [str(i) for i in range(len(q))]
    )


def _slim(result: dict[str, Any]) -> dict[str, Any]:
    return {k: result[k] for k in ("metrics", "counts", "latency_ms", "examples") if k in result}


# -- orchestration -----------------------------------------------------------------------------
def run_ablation(
    cfg: AblationConfig, on_step: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Train, evaluate, log to MLflow, write JSON, plots and the document section."""
    import torch

    from celltext.benchmarking.resources import machine_info
    from celltext.data.release import load_release
    from celltext.reports.ablation import write_ablation_report
    from celltext.teacher import load_teacher

    cfg = cfg.with_architectures()
    on_step = on_step or (lambda msg: log.info("ablation: %s", msg))
    torch.set_num_threads(cfg.threads)
    out = cfg.out_dir()
    out.mkdir(parents=True, exist_ok=True)
    release = load_release(cfg.release)
    teacher = load_teacher()
    t0 = time.perf_counter()
    trained: dict[str, dict[str, Any]] = {}
    jobs = [("decoder", "mlp", d) for d in cfg.decoders]
    jobs += [("core", c, cfg.base_decoder) for c in cfg.cores]
    for stage, core, dec in jobs:
        key = f"{stage}/{dec if stage == 'decoder' else core}"
        on_step(f"train {key}")
        preset = variant_preset(cfg, core, dec, stage)
        trained[key] = train_variant(preset, out / "runs" / key.replace("/", "-"), teacher)
        spec = preset.core if stage == "core" else preset.decoder
        trained[key]["arch_config"] = dict(spec.config)
    results = evaluate_variants(cfg, release, trained, teacher, on_step)
    torch.set_num_threads(cfg.threads)  # training may have changed it
    report = {
        "config": cfg.to_dict(),
        "budget": cfg.resolved(),
        "release": {"version": release.version, "sha256": release.sha256},
        "machine": machine_info(),
        "wall_s": round(time.perf_counter() - t0, 1),
        **results,
    }
    (out / "ablation.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    if cfg.mlflow:
        on_step("log to MLflow")
        report["mlflow_runs"] = log_to_mlflow(report)
    on_step("write report")
    report["doc"] = str(write_ablation_report(report, Path(cfg.doc), Path(cfg.figures)))
    return report


def log_to_mlflow(report: dict[str, Any], experiment: str = "celltext-ablation") -> list[str]:
    """One MLflow run per variant: params (architecture, budget) and metrics per split."""
    from celltext.registry.tracking import MlflowTracker

    run_ids = []
    tag = {"release": report["release"]["version"], "seed": report["config"]["seed"]}
    for group in ("decoders", "cores"):
        for name, res in report[group].items():
            run_ids.append(_log_one(MlflowTracker, experiment, f"{group[:-1]}-{name}", res,
                                    {**tag, **report["budget"], "kind": group[:-1]}))  # fmt: skip
    run_ids.append(_log_one(MlflowTracker, experiment, "retrieval", report["retrieval"],
                            {**tag, "kind": "baseline"}))  # fmt: skip
    return run_ids


def _log_one(tracker_cls, experiment: str, name: str, res: dict, params: dict) -> str:
    tracker = tracker_cls(experiment, run_name=f"ablation-{name}")
    tracker.log_params({**params, **{k: v for k, v in res.get("info", {}).items()}})
    metrics: dict[str, float] = {}
    for split, r in res["splits"].items():
        for key, value in r["metrics"].items():
            metrics[f"{split}/{key}"] = float(value)
        metrics[f"{split}/latency_p50_ms"] = float(r["latency_ms"]["p50"])
    if "train_time_s" in res:
        metrics["train/time_s"] = float(res["train_time_s"])
    tracker.log_metrics(metrics, 0)
    tracker.finish("FINISHED")
    return str(getattr(tracker, "run_id", ""))
