"""Core ablation on release v2: six cores x seeds, the core stage only, at one equal budget.

    nice -n 10 python benchmarks/core_ablation.py [--steps 400] [--seeds 0 1 2]
        [--out docs/results/v3/core_ablation.json] [--probe 5]

Every variant trains only the core (question embedding -> answer embedding) with the
shipped preset's core stage (``configs/presets/default.yaml``: loss weights, bank-wide
contrastive negatives, lr, batch, schedule) on all release v2 training pairs, for the same
number of optimizer steps (``--steps``; the shipped budget is 4 epochs, ``SHIPPED_STEPS``).
No decoder is trained or needed. Each run is then evaluated alone on ``val`` and
``test_paraphrase``: the mean cosine of the predicted embedding to the reference answer's
teacher embedding, and answer top-1 (the nearest answer among the training answers plus the
split's own is the reference). The retrieval baseline's top-1 (the nearest training
question's answer) is reported on the same splits. No selection on any evaluated split: the
weights of the last step are kept (``restore_best`` off).

The variants are sized to within ~25% of the shipped core's parameters; the lattice-only and
Mamba-only variants keep the shipped lattice (4x4x4, 5 steps) and widen its state, the CCT
keeps the shipped map and width with one more layer. Teacher embeddings come from the
project's caches (phrase bank for the training pairs, the teacher's disk cache for the rest).
``--probe N`` times N steps per variant and exits (to size ``--steps``). The results file is
rewritten after every run, and ``--resume`` keeps the runs it already holds.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from celltext.index import RetrievalIndex, nearest_rows  # noqa: E402
from celltext.models.zoo import count_parameters, create_model  # noqa: E402
from celltext.training.args import TrainArgs  # noqa: E402
from celltext.training.loop import StageRun, run_stage  # noqa: E402
from celltext.training.presets import load_preset  # noqa: E402
from celltext.training.reproducibility import seed_everything  # noqa: E402
from celltext.training.stages import predict  # noqa: E402
from celltext.training.state import TrainState  # noqa: E402
from celltext.training.tasks import CoreTask  # noqa: E402

RELEASE = "v2"
SPLITS = ("val", "test_paraphrase")
PRESET = "default"
SMALL_LATTICE = {"size": [4, 4, 4], "steps": 5}  # the shipped core's lattice geometry
SHIPPED_CCT = {"image_size": [8, 8], "in_channels": 2, "dim": 128, "n_heads": 4}

# label -> (registered core, config overrides); the hybrid's overrides are the preset's own
VARIANTS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "hybrid (shipped)": ("hybrid_cct_mamba_v1", None),
    "lattice only": ("lattice3d_v2", {"lattice": {**SMALL_LATTICE, "state_dim": 42,
                                                  "hidden_mult": 1.0}}),
    "Mamba only": ("mamba_v1", {"lattice": {**SMALL_LATTICE, "state_dim": 42, "hidden_mult": 1.0},
                                "mamba": {"n_layers": 1, "d_state": 8}}),
    "CCT only": ("cct_v1", {"cct": {**SHIPPED_CCT, "n_layers": 3}}),
    "MLP": ("mlp_v1", {"hidden": 340}),
    "transformer": ("transformer_v1", {}),
}  # fmt: skip

log = logging.getLogger("core_ablation")


# -- data -----------------------------------------------------------------------------------
def load_data() -> dict[str, Any]:
    """Training pairs (from the phrase bank's cache) and the evaluated splits' embeddings."""
    from celltext.data.release import load_release
    from celltext.teacher import load_teacher

    rel = load_release(RELEASE)
    teacher = load_teacher()
    bank = RetrievalIndex.for_release(teacher, rel, "train")
    train_answers = list(bank.answers)
    splits = {}
    for name in SPLITS:
        pairs = rel.pairs(name)
        refs = [p.answer for p in pairs]
        answers = list(dict.fromkeys(train_answers + refs))  # the evaluation's answer bank
        splits[name] = {
            "q": torch.from_numpy(np.asarray(teacher.encode([p.question for p in pairs]))).float(),
            "a": torch.from_numpy(np.asarray(teacher.encode(refs))).float(),
            "refs": refs,
            "answers": answers,
            "answer_emb": np.asarray(teacher.encode(answers), dtype=np.float32),
        }
    return {
        "release": {"version": rel.version, "sha256": rel.sha256},
        "teacher": teacher.id,
        "bank": bank,
        "train_q": torch.from_numpy(bank.question_embs).float(),
        "train_a": torch.from_numpy(bank.answer_embs).float(),
        "train_answers": train_answers,
        "splits": splits,
    }


# -- one run --------------------------------------------------------------------------------
def build_core(label: str, core_cfg: dict[str, Any], seed: int) -> torch.nn.Module:
    name, overrides = VARIANTS[label]
    seed_everything(seed)
    return create_model(name, kind="core", **(core_cfg if overrides is None else overrides))


def stage_args(preset, steps: int) -> TrainArgs:
    """The preset's core-stage optimisation at ``steps`` steps, one evaluation at the end,
    the last weights kept (nothing is selected on an evaluated split)."""
    return preset.stages.core.train.replace(
        max_steps=steps, eval_every=steps, early_stopping_patience=0, restore_best=False,
        checkpoint_every=0, log_every=max(1, steps),
    )  # fmt: skip


def make_task(preset, data: dict[str, Any]) -> CoreTask:
    c, val = preset.stages.core, data["splits"]["val"]
    return CoreTask(
        data["train_q"], data["train_a"], val["q"], val["a"],
        c.cosine_weight, c.mse_weight, c.contrastive_weight, c.temperature,
        val_answers=val["refs"],
        train_answers=data["train_answers"] if c.negatives == "bank" else None,
    )  # fmt: skip


def evaluate_core(core: torch.nn.Module, data: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per split: mean cosine to the reference answer embedding, answer top-1."""
    out = {}
    for name, s in data["splits"].items():
        pred = predict(core, s["q"])  # (N, D)
        cos = torch.nn.functional.cosine_similarity(pred, s["a"], dim=-1)
        nearest = nearest_rows(pred.numpy(), s["answer_emb"])
        hits = [s["answers"][j] == r for j, r in zip(nearest, s["refs"], strict=True)]
        out[name] = {"cosine": float(cos.mean()), "answer_top1": float(np.mean(hits))}
    return out


def retrieval_top1(data: dict[str, Any]) -> dict[str, float]:
    """The retrieval baseline: the nearest training question's answer is the reference."""
    bank = data["bank"]
    out = {}
    for name, s in data["splits"].items():
        rows = nearest_rows(s["q"].numpy(), bank.question_embs)
        hits = [bank.answers[j] == r for j, r in zip(rows, s["refs"], strict=True)]
        out[name] = float(np.mean(hits))
    return out


def train_one(label: str, seed: int, steps: int, preset, task: CoreTask, data) -> dict[str, Any]:
    core = build_core(label, preset.core.config, seed)
    params = count_parameters(core)
    state = TrainState(stage="core")
    wall, cpu = time.perf_counter(), time.process_time()
    run_stage(StageRun("core", task, core, stage_args(preset, steps), seed, state, progress=False))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    metrics = evaluate_core(core, data)
    return {
        "variant": label, "core": VARIANTS[label][0], "seed": seed, "params": params,
        "steps": state.step, "train_s": round(wall, 1), "train_cpu_s": round(cpu, 1),
        "final_train_loss": state.metrics.get("core/train/loss"), **metrics,
    }  # fmt: skip


# -- summary --------------------------------------------------------------------------------
def _mean_std(values: list[float]) -> dict[str, float]:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std, "n": len(values)}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for label in VARIANTS:
        rows = [r for r in runs if r["variant"] == label]
        if not rows:
            continue
        row = {"core": rows[0]["core"], "params": rows[0]["params"], "seeds": len(rows)}
        for split in SPLITS:
            for key in ("cosine", "answer_top1"):
                row[f"{split}/{key}"] = _mean_std([r[split][key] for r in rows])
        row["train_s"] = _mean_std([r["train_s"] for r in rows])
        row["train_cpu_s"] = _mean_std([r["train_cpu_s"] for r in rows])
        out[label] = row
    return out


def markdown(report: dict[str, Any]) -> str:
    f = lambda m: f"{m['mean']:.3f} ± {m['std']:.3f}"  # noqa: E731
    head = ["variant", "core", "params", "seeds"]
    head += [f"{s} {k}" for s in SPLITS for k in ("cos", "top-1")]
    head += ["train s", "train CPU s"]
    lines = ["| " + " | ".join(head) + " |", "| --- | --- " + "| ---: " * (len(head) - 2) + "|"]
    for label, r in report["summary"].items():
        cells = [label, f"`{r['core']}`", f"{r['params']:,}", str(r["seeds"])]
        cells += [f(r[f"{s}/{k}"]) for s in SPLITS for k in ("cosine", "answer_top1")]
        cells += [f"{r['train_s']['mean']:.0f}", f"{r['train_cpu_s']['mean']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    ret = report["retrieval_top1"]
    cells = ["retrieval (baseline)", "–", "0", "–"]
    cells += [x for s in SPLITS for x in ("–", f"{ret[s]:.3f}")] + ["–", "–"]
    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------
def probe(steps: int, preset, task: CoreTask) -> None:
    """Seconds per optimizer step of every variant (``steps`` steps after one warm-up)."""
    args = preset.stages.core.train
    for label in VARIANTS:
        core = build_core(label, preset.core.config, 0).train()
        opt = torch.optim.AdamW(core.parameters(), lr=args.lr)
        times = []
        for _ in range(steps + 1):
            idx = torch.randint(0, task.n_train, (args.batch_size,))
            t = time.process_time()
            loss, _ = task.loss(core, task.batch(idx, torch.device("cpu")))
            loss.backward()
            opt.step()
            opt.zero_grad()
            times.append(time.process_time() - t)
        per = statistics.fmean(times[1:])
        print(
            f"{label:18s} params {count_parameters(core):>9,}  {per * 1000:7.1f} ms/step (CPU)",
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=400, help="optimizer steps per run")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--out", default=str(ROOT / "docs/results/v3/core_ablation.json"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--probe", type=int, default=0, help="time this many steps per variant, exit")
    p.add_argument("--resume", action="store_true", help="keep the runs already in --out")
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(a.threads)
    started = time.perf_counter()
    preset = load_preset(PRESET)
    data = load_data()
    task = make_task(preset, data)
    print(f"data ready in {time.perf_counter() - started:.0f} s", flush=True)
    if a.probe:
        probe(a.probe, preset, task)
        return
    batch = preset.stages.core.train.batch_size
    shipped = math.ceil(preset.stages.core.train.epochs * task.n_train / batch)
    out = Path(a.out)
    runs: list[dict[str, Any]] = []
    if a.resume and out.is_file():
        runs = [r for r in json.loads(out.read_text())["runs"] if r["steps"] == a.steps]
    report = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "release": data["release"], "teacher": data["teacher"], "preset": PRESET,
        "budget": {
            "steps": a.steps, "batch_size": batch, "train_pairs": task.n_train,
            "epochs": round(a.steps * batch / task.n_train, 3), "shipped_steps": shipped,
            "fraction_of_shipped": round(a.steps / shipped, 4), "threads": a.threads,
        },
        "variants": {k: {"core": v[0], "overrides": v[1] if v[1] is not None
                         else preset.core.config} for k, v in VARIANTS.items()},
        "machine": platform.processor() or platform.machine(),
        "retrieval_top1": retrieval_top1(data),
    }  # fmt: skip
    for seed in a.seeds:  # seed-major: an interrupted ablation has every variant's first seeds
        for label in a.variants:
            if any(r["variant"] == label and r["seed"] == seed for r in runs):
                continue
            runs.append(train_one(label, seed, a.steps, preset, task, data))
            r = runs[-1]
            print(f"{label:18s} seed {seed}: val cos {r['val']['cosine']:.4f} top-1 "
                  f"{r['val']['answer_top1']:.4f} | test_paraphrase cos "
                  f"{r['test_paraphrase']['cosine']:.4f} top-1 "
                  f"{r['test_paraphrase']['answer_top1']:.4f} | {r['train_s']:.0f} s",
                  flush=True)  # fmt: skip
            report.update(runs=runs, summary=summarise(runs))
            report["wall_s"] = round(time.perf_counter() - started, 1)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report, indent=2) + "\n")
    report.update(runs=runs, summary=summarise(runs))
    print(markdown(report))


if __name__ == "__main__":
    main()
