"""``celltext demo``: the main job on the embedded default (what ``make demo`` runs).

With a shipped model under ``models/default`` it answers one sample question per domain
(answer, confidence, provenance, latency) and prints the evaluation summary. Without one it
shows what exists: the data release's stats, sample pairs, and the teacher's similarity
for a question and its answer versus an unrelated sentence.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random

import numpy as np
import typer
from rich.table import Table

from celltext.cli.common import JSON_OPTION, emit_json, err_console
from celltext.paths import DEFAULT_RELEASE, default_model_dir

log = logging.getLogger(__name__)

UNRELATED = "The recipe calls for two cups of flour and a pinch of salt."


def _sample_per_domain(pairs: list, seed: int = 0) -> list:
    """One pair per domain, chosen deterministically."""
    rng = random.Random(seed)
    by_domain: dict[str, list] = {}
    for pair in pairs:
        by_domain.setdefault(pair.domain, []).append(pair)
    return [rng.choice(by_domain[d]) for d in sorted(by_domain)]


def _teacher_check(pair) -> dict:
    from celltext.teacher import load_teacher

    teacher = load_teacher()
    q, a, u = teacher.encode([pair.question, pair.answer, UNRELATED])
    return {
        "teacher": teacher.id,
        "question": pair.question,
        "answer": pair.answer,
        "unrelated": UNRELATED,
        "cos_question_answer": float(np.dot(q, a)),
        "cos_question_unrelated": float(np.dot(q, u)),
    }


def _ensure_export(backend: str) -> None:
    """Build the shipped model's ONNX export once (~20 s), so this and every later ``ask``,
    ``serve`` and ``demo`` answer through onnxruntime without importing torch. A model that
    cannot be exported is answered with PyTorch (``auto``) or is an error (``onnx``)."""
    if backend == "torch" or os.environ.get("CELLTEXT_BACKEND") == "torch":
        return
    from celltext.inference.loading import choose_backend

    if choose_backend(None, "auto")[0] == "onnx":
        return
    err_console.print("[dim]building the ONNX export of the shipped model (once)...[/]")
    try:
        from celltext.export.onnx import build_export

        build_export(None)
    except Exception as exc:  # noqa: BLE001 -- auto: the torch path still answers
        if backend == "onnx":
            raise
        log.warning("no ONNX export (%s: %s); answering with PyTorch", type(exc).__name__, exc)


def _answer_samples(predictor, samples: list) -> list[dict]:
    predictor.answer([samples[0].question])  # warm-up, so latencies are warm
    rows = []
    for pair in samples:
        ans = predictor.answer([pair.question])[0]
        rows.append(
            {
                "domain": pair.domain,
                "question": pair.question,
                "answer": ans.answer,
                "reference": pair.answer,
                "confidence": round(float(ans.confidence), 3),
                "fallback": bool(ans.fallback),
                "fallback_reason": ans.fallback_reason,
                "provenance": ans.provenance,
                "latency_ms": round(float(ans.latency_ms), 1),
                "model": ans.model,
            }
        )
    return rows


def _eval_summary(predictor, release, limit: int) -> dict:
    """``celltext eval --split test_paraphrase --limit N`` scores, of the served predictor
    itself (the production path users get: selector, confidence, abstention; its own
    teacher and served phrase bank, which holds no ``test_paraphrase`` pair), so the demo
    builds one phrase bank, not a second one for PyTorch's teacher."""
    from celltext.evaluation.evaluate import EvalRequest, run_eval
    from celltext.evaluation.systems import GenerativeSystem, PredictorSystem

    system = PredictorSystem(predictor, GenerativeSystem(predictor, name="default"))
    request = EvalRequest(
        None, "test_paraphrase", limit=limit, latency_samples=8, rank_answers=False
    )
    report = run_eval(request, release, system=system)
    return {"n": report["counts"]["n"], **report["metrics"], "latency_ms": report["latency_ms"]}


def demo(
    release: str = typer.Option(DEFAULT_RELEASE, help="Data release to show."),
    eval_limit: int = typer.Option(200, help="Pairs of test_paraphrase in the live eval."),
    backend: str = typer.Option(
        "auto",
        "--backend",
        help="auto: build the ONNX export once and answer through onnxruntime (PyTorch if the "
        "export fails); torch; onnx.",
    ),  # fmt: skip
    json_out: bool = JSON_OPTION,
) -> None:
    """Run the shipped model on one sample question per domain and summarise its quality."""
    from celltext.data.release import load_release

    rel = load_release(release)
    stats = {
        "version": rel.version,
        "sha256": rel.sha256,
        "per_split": {s: len(rel.pairs(s)) for s in rel.manifest["per_split"]},
    }
    samples = _sample_per_domain(rel.pairs("test_paraphrase"))
    report: dict = {"release": stats, "teacher_check": _teacher_check(samples[0])}
    has_model = (default_model_dir() / "model.safetensors").exists()
    if has_model:
        from celltext.inference.factory import load_predictor

        _ensure_export(backend)
        predictor = load_predictor(None, backend=backend)
        report["answers"] = _answer_samples(predictor, samples)
        report["eval"] = _eval_summary(predictor, rel, eval_limit)
    else:
        report["samples"] = [dataclasses.asdict(p) for p in samples[:5]]
    if json_out:
        emit_json(report)
        return
    _print_report(report, has_model, eval_limit)


def _print_report(report: dict, has_model: bool, eval_limit: int) -> None:
    out = err_console
    rel = report["release"]
    out.rule(f"celltext demo — release {rel['version']} ({rel['sha256'][:12]})")
    out.print("pairs per split: " + json.dumps(rel["per_split"]))
    tc = report["teacher_check"]
    out.print(
        f"teacher {tc['teacher']}: cos(question, its answer) = {tc['cos_question_answer']:.3f}"
        f"  vs  cos(question, unrelated) = {tc['cos_question_unrelated']:.3f}"
    )
    if not has_model:
        out.print("[yellow]No shipped model under models/default yet; sample pairs:[/]")
        for pair in report["samples"]:
            out.print(f"  [{pair['domain']}] Q: {pair['question']}\n      A: {pair['answer']}")
        return
    table = Table(title="Shipped model on one question per domain", show_lines=True)
    for col in ("domain", "question", "answer", "conf", "source", "ms"):
        table.add_column(col)
    for row in report["answers"]:
        table.add_row(
            row["domain"],
            row["question"],
            row["answer"],
            f"{row['confidence']:.2f}",
            row["provenance"] + (f" ({row['fallback_reason']})" if row["fallback_reason"] else ""),
            f"{row['latency_ms']:.0f}",
        )
    out.print(table)
    ev = report["eval"]
    keys = ("semantic_similarity", "bleu", "chrf", "rouge_l", "exact_match", "coherence",
            "core_cosine", "abstention_rate", "calibration_error",
            "unknown_token_rate")  # fmt: skip
    summary = ", ".join(f"{k}={ev[k]:.3f}" for k in keys if k in ev)
    out.print(
        f"eval on a fixed sample of {ev['n']} test_paraphrase pairs (the served path, its "
        "phrase bank of every release fact, which holds no test_paraphrase pair; `celltext "
        f"eval --split test_paraphrase --limit {eval_limit}` scores PyTorch on the train bank):"
    )
    out.print(f"  {summary}; batch-1 p50 {ev['latency_ms'].get('p50', float('nan')):.0f} ms")
    out.print("Full-split numbers: README 'Results' and docs/PERFORMANCE_ANALYSIS.md.")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
