"""Parity of the onnxruntime path with PyTorch, int8 quantisation, and the report of both.

:func:`parity_report` answers the same questions with the predictor on PyTorch stages and on
one or more ONNX Runtime exports and counts identical answers: the generated answers
(fallback off, greedy) and, where the predictors have a phrase bank, the served answers
(selector, editing and fallback on); it also records the largest teacher-embedding and core-output
differences, latency (p50/p95 per question at batch 1) and, with reference answers, the
semantic similarity of each path (one metric definition: :mod:`celltext.metrics`).
:func:`report_markdown` turns it into the snippet for ``docs/PERFORMANCE_ANALYSIS.md``.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from celltext.export.publish import write_manifest
from celltext.inference.export_files import MANIFEST

log = logging.getLogger(__name__)

QUANTIZED = (
    "core.onnx", "core_activity.onnx", "decoder_prefill.onnx", "decoder_prefill_edit.onnx",
    "decoder_step.onnx", "decoder_verify.onnx",
)  # fmt: skip


def quantize_int8(src: str | Path, dst: str | Path, teacher: bool = False) -> Path:
    """Copy an export to ``dst`` with dynamic int8 weights for the core and decoder
    (and the teacher when ``teacher``), via ``onnxruntime.quantization.quantize_dynamic``."""
    import json

    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, dst = Path(src), Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    names = QUANTIZED + (("teacher.onnx",) if teacher else ())
    for path in src.iterdir():
        if not path.is_file() or path.name == MANIFEST:
            continue
        if path.name in names:
            quantize_dynamic(str(path), str(dst / path.name), weight_type=QuantType.QInt8)
        else:
            shutil.copy2(path, dst / path.name)
    manifest = json.loads((src / MANIFEST).read_text())
    manifest["quantized"] = {
        "type": "dynamic int8",
        "files": [n for n in names if (src / n).exists()],
    }
    manifest.pop("files", None)
    write_manifest(dst, manifest)
    return dst


def _batched(predictor, questions: Sequence[str], batch_size: int) -> list[Any]:
    rows: list[Any] = []
    for start in range(0, len(questions), batch_size):
        rows += predictor.answer(questions[start : start + batch_size])
    return rows


def _timed_answers(
    predictor, questions: Sequence[str], batch_size: int, latency_samples: int = 50
) -> tuple[list[str], list[float]]:
    """Generated answers, and batch-1 latencies (ms) of the first ``latency_samples`` questions."""
    answers = [a.answer for a in _batched(predictor, questions, batch_size)]
    latencies = []
    for q in questions[: min(latency_samples, len(questions))]:
        t0 = time.perf_counter()
        predictor.answer([q])
        latencies.append((time.perf_counter() - t0) * 1000.0)
    return answers, latencies


def _latency(ms: list[float]) -> dict[str, float]:
    arr = np.asarray(ms, dtype=np.float64)
    if not arr.size:
        return {"p50_ms": 0.0, "p95_ms": 0.0}
    return {"p50_ms": float(np.percentile(arr, 50)), "p95_ms": float(np.percentile(arr, 95))}


def parity_report(
    torch_predictor,
    ort_predictors: dict[str, Any],
    questions: Sequence[str],
    references: Sequence[str] | None = None,
    batch_size: int = 32,
    split: str | None = None,
    examples: int = 5,
    latency_samples: int = 50,
) -> dict[str, Any]:
    """Compare PyTorch with each ONNX Runtime predictor (``{"onnx": p, "onnx-int8": q}``)."""
    questions = list(questions)
    production = {
        name: [a.answer for a in _batched(p, questions, batch_size)]
        for name, p in {"pytorch": torch_predictor, **ort_predictors}.items()
        if p.bank is not None and p.config.fallback.enabled
    }
    # the generated answers: fallback off, greedy (copies; the callers' predictors stay)
    greedy = {"fallback": {"enabled": False}, "decoding": {"generation": {
        "num_beams": 1, "do_sample": False}}}  # fmt: skip
    torch_predictor = torch_predictor.with_config(**greedy)
    ort_predictors = {name: p.with_config(**greedy) for name, p in ort_predictors.items()}
    ref_answers, ref_ms = _timed_answers(torch_predictor, questions, batch_size, latency_samples)
    q_torch = torch_predictor.embed(questions[:64])  # (n, D)
    core_torch = torch_predictor.core(q_torch)  # (n, D)
    report: dict[str, Any] = {
        "split": split,
        "questions": len(questions),
        "model": torch_predictor.info.label,
        "paths": {"pytorch": {"latency": _latency(ref_ms)}},
    }
    sims = _similarity(torch_predictor, ref_answers, references)
    if sims is not None:
        report["paths"]["pytorch"]["semantic_similarity"] = sims
    ref = (ref_answers, q_torch, core_torch)
    for name, pred in ort_predictors.items():
        entry = _path_entry(name, pred, questions, ref, batch_size, latency_samples, examples)
        sims = _similarity(torch_predictor, entry.pop("answers"), references)
        if sims is not None:
            entry["semantic_similarity"] = sims
        if "pytorch" in production and name in production:
            same = sum(a == b for a, b in zip(production["pytorch"], production[name], strict=True))
            entry["production_identical"] = same  # served answers, selector and fallback on
        report["paths"][name] = entry
    return report


def _path_entry(name, pred, questions, ref, batch_size, latency_samples, examples):
    """One onnxruntime predictor against the PyTorch ``ref`` (its generated answers, teacher
    and core outputs on the first 64 questions): counts, largest differences, latency."""
    ref_answers, q_torch, core_torch = ref
    answers, ms = _timed_answers(pred, questions, batch_size, latency_samples)
    diffs = [i for i, (a, b) in enumerate(zip(ref_answers, answers, strict=True)) if a != b]
    q_ort = pred.embed(questions[:64])  # (n, D)
    n = len(q_torch)
    return {
        "identical": len(questions) - len(diffs),
        "different": len(diffs),
        "identical_rate": (len(questions) - len(diffs)) / max(1, len(questions)),
        "teacher_max_abs_diff": float(np.abs(q_ort - q_torch).max()) if n else 0.0,
        "core_max_abs_diff": float(np.abs(pred.core(q_torch) - core_torch).max()) if n else 0.0,
        "latency": _latency(ms),
        "providers": pred.backend.providers,
        "examples": [
            {"question": questions[i], "pytorch": ref_answers[i], name: answers[i]}
            for i in diffs[:examples]
        ],
        "answers": answers,
    }


def _similarity(
    predictor, answers: Sequence[str], references: Sequence[str] | None
) -> float | None:
    if references is None:
        return None
    from celltext.metrics import semantic_similarity

    return semantic_similarity(list(answers), list(references), teacher=predictor.teacher)


def tensorrt_check(folder: str | Path, questions: Sequence[str]) -> dict[str, Any]:
    """Answer with the TensorRT execution provider where onnxruntime has it; else say why not."""
    from celltext.inference.onnx_backend import available_providers, load_export
    from celltext.inference.predictor import Predictor

    providers = available_providers()
    if "TensorrtExecutionProvider" not in providers:
        return {"available": False, "reason": f"onnxruntime providers here: {providers}"}
    try:
        parts = load_export(folder, providers=[
            "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"
        ])  # fmt: skip
        pred = Predictor.from_parts(parts, parts.config.replace(fallback={"enabled": False}))
        answers, ms = _timed_answers(pred, list(questions), 32)
    except Exception as exc:  # noqa: BLE001 -- report, do not fail the export
        return {"available": True, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"available": True, "answers": len(answers), "latency": _latency(ms)}


def report_markdown(report: dict[str, Any], command: str = "") -> str:
    """A markdown snippet of a parity report (for ``docs/PERFORMANCE_ANALYSIS.md``)."""
    lines = [
        f"### ONNX Runtime parity ({report['model']}, {report['questions']} questions"
        + (f" of `{report['split']}`" if report.get("split") else "")
        + ")",
        "",
        "| path | identical to PyTorch | different | served answers identical | semantic "
        "similarity | p50 ms | p95 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, entry in report["paths"].items():
        ident = (
            "—" if name == "pytorch" else f"{entry['identical']} ({entry['identical_rate']:.1%})"
        )
        diff = "—" if name == "pytorch" else str(entry["different"])
        served = entry.get("production_identical")
        served = "—" if served is None else f"{served} of {report['questions']}"
        sim = entry.get("semantic_similarity")
        lat = entry["latency"]
        lines.append(
            f"| {name} | {ident} | {diff} | {served} | {'—' if sim is None else f'{sim:.4f}'} "
            f"| {lat['p50_ms']:.1f} | {lat['p95_ms']:.1f} |"
        )
    trt = report.get("tensorrt")
    if trt is not None:
        lines += ["", f"TensorRT execution provider: {trt}"]
    lines += ["", "Generated answers: greedy decoding, fallback off; served answers: the "
              "production path (selector, editing, fallback). Latency: generated, per question "
              "at batch 1 (first 50)."]  # fmt: skip
    if command:
        lines += ["", f"Produced by `{command}`."]
    return "\n".join(lines) + "\n"
