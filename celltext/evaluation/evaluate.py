"""Evaluation of a system on a release split: quality, per-domain breakdown, latency.

``evaluate_system`` scores end-to-end answers (generative, Predictor or retrieval);
``evaluate_decoder`` scores the decoder alone on the embedding-inversion task (decode the
teacher embedding of each reference answer). Both are deterministic: the subset chosen by
``limit`` is a fixed-seed sample, greedy decoding has no randomness and reranking seeds
its sampler per batch. Latency numbers (``latency_ms``) are the only fields that vary
between runs; everything under ``metrics``, ``counts`` and ``per_domain`` does not.

:func:`load_system` maps a ``--model`` reference to a system (see
:mod:`celltext.evaluation.systems`); :func:`run_eval` is what ``celltext eval`` calls.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from celltext import metrics as M
from celltext.evaluation.systems import (
    EditingDecoder,
    GenerativeSystem,
    PredictorSystem,
    RetrievalSystem,
)
from celltext.index import unit_rows
from celltext.inference.records import RETRIEVAL, PredictorConfig

log = logging.getLogger(__name__)

LATENCY_SAMPLES = 32
_ROUND = 6

# ``on_progress(stage, done, total)``: items of ``stage`` done so far (for a progress bar).
OnProgress = Callable[[str, int, int], None]


def _r(x: float) -> float:
    return round(float(x), _ROUND)


def select_pairs(pairs: Sequence[Any], limit: int | None, seed: int = 0) -> list[Any]:
    """A fixed-seed sample of ``limit`` pairs (in their original order), or all of them."""
    pairs = list(pairs)
    if limit is None or limit <= 0 or limit >= len(pairs):
        return pairs
    keep = np.sort(np.random.default_rng(seed).permutation(len(pairs))[:limit])
    return [pairs[i] for i in keep]


def measure_latency(
    call: Callable[[str], Any],
    questions: Sequence[str],
    warmup: int = 2,
    on_progress: OnProgress | None = None,
) -> dict[str, float]:
    """Batch-1 wall-clock latency of ``call(question)`` after ``warmup`` calls (ms)."""
    if not questions:
        return M.latency_summary([])
    for q in list(questions)[:warmup]:
        call(q)
    times = []
    for q in questions:
        t0 = time.perf_counter()
        call(q)
        times.append((time.perf_counter() - t0) * 1000.0)
        if on_progress is not None:
            on_progress("latency", len(times), len(questions))
    return {k: (_r(v) if isinstance(v, float) else v) for k, v in M.latency_summary(times).items()}


def in_chunks(
    call: Callable[[Sequence[Any]], Sequence[Any]],
    items: Sequence[Any],
    system: Any,
    stage: str,
    on_progress: OnProgress | None,
) -> list[Any]:
    """``call(items)``, or, with ``on_progress`` and a system whose results do not depend
    on the batch (``system.batch_invariant``), the same call on chunks of its decode batch
    size, reporting each; the results are the same either way."""
    n = len(items)
    if on_progress is None or not getattr(system, "batch_invariant", False):
        if on_progress is not None:
            on_progress(stage, 0, n)
        out = list(call(items))
        if on_progress is not None:
            on_progress(stage, n, n)
        return out
    size = system.batch_size
    out = []
    for start in range(0, n, size):
        out.extend(call(items[start : start + size]))
        on_progress(stage, len(out), n)
    return out


# -- scoring -----------------------------------------------------------------------------------
def score_items(
    questions: Sequence[str], hyps: Sequence[str], refs: Sequence[str], teacher: Any
) -> dict[str, np.ndarray]:
    """Per-item scores (N,) for every per-item metric, plus coherence components."""
    coh = M.coherence(questions, hyps, teacher)
    return {
        "rouge_l": M.rouge_l_scores(hyps, refs),
        "semantic_similarity": M.semantic_similarity_scores(hyps, refs, teacher),
        "exact_match": M.exact_match_scores(hyps, refs),
        "coherence": coh.scores,
        "coherence_repetition": coh.repetition,
        "coherence_completeness": coh.completeness,
        "coherence_on_topic": coh.on_topic,
    }


def aggregate(
    idx: np.ndarray, hyps: Sequence[str], refs: Sequence[str], items: dict[str, np.ndarray]
) -> dict[str, float]:
    """Corpus BLEU/chrF on the subset ``idx`` plus the means of the per-item scores."""
    h = [hyps[i] for i in idx]
    r = [refs[i] for i in idx]
    out = {"n": int(len(idx)), "bleu": _r(M.bleu(h, r)), "chrf": _r(M.chrf(h, r))}
    for key, vals in items.items():
        out[key] = _r(np.mean(vals[idx])) if len(idx) else 0.0
    return out


def per_domain(
    domains: Sequence[str],
    hyps: Sequence[str],
    refs: Sequence[str],
    items: dict[str, np.ndarray],
) -> dict[str, dict[str, float]]:
    """The aggregate of every domain present, sorted by domain name."""
    arr = np.asarray(domains)
    return {d: aggregate(np.flatnonzero(arr == d), hyps, refs, items) for d in sorted(set(domains))}


# -- end to end --------------------------------------------------------------------------------
def evaluate_system(
    system: Any,
    pairs: Sequence[Any],
    metric_teacher: Any,
    latency_samples: int = LATENCY_SAMPLES,
    answer_bank: Sequence[str] | None = None,
    on_progress: OnProgress | None = None,
) -> dict[str, Any]:
    """Answer every pair's question with ``system`` and score against the reference.

    With ``answer_bank`` (known answers that include every reference), ``answer_top1`` is
    the fraction of predicted embeddings whose nearest bank answer is the reference.
    """
    questions = [p.question for p in pairs]
    refs = [p.answer for p in pairs]
    preds = in_chunks(system.predict, questions, system, "answer", on_progress)
    hyps = [p.answer for p in preds]
    if on_progress is not None:
        on_progress("score", 0, 0)  # metrics, core cosine, answer ranking: no count
    items = score_items(questions, hyps, refs, metric_teacher)
    everything = np.arange(len(pairs))
    overall = aggregate(everything, hyps, refs, items)
    fallback = np.array([p.fallback for p in preds], dtype=np.float64)
    items_fb = {**items, "fallback_rate": fallback}
    if all(p.core_emb is not None for p in preds) and preds:
        core = np.stack([p.core_emb for p in preds])  # (N, D)
        target = np.asarray(system.teacher.encode(refs), dtype=np.float32)  # (N, D)
        items_fb["core_cosine"] = M.cosine_rows(core, target)
        if answer_bank:
            items_fb["answer_top1"] = answer_top1(core, refs, answer_bank, system.teacher)
    tokenizer = getattr(system, "tokenizer", None)
    metrics = {
        **{k: v for k, v in overall.items() if k != "n"},
        "fallback_rate": _r(fallback.mean()) if len(fallback) else 0.0,
        "unknown_token_rate": _r(M.unknown_token_rate(hyps, tokenizer)),
        "invalid_char_rate": _r(M.invalid_char_rate(hyps)),
    }
    for key in ("core_cosine", "answer_top1"):
        if key in items_fb:
            metrics[key] = _r(items_fb[key].mean())
    selective = _selective(preds, items["semantic_similarity"], hyps, refs)
    extra = {k: selective.pop(k) for k in ("calibration_bins", "provenance") if k in selective}
    metrics.update(selective)
    domains = [p.domain for p in pairs]
    latency = measure_latency(
        lambda q: system.answer_texts([q], cache=False), questions[:latency_samples],
        on_progress=on_progress,
    )  # fmt: skip
    return {
        "metrics": metrics,
        "counts": {
            "n": len(pairs),
            "fallback": int(fallback.sum()),
            "generative": int(len(pairs) - fallback.sum()),
            "empty": int(sum(not h.strip() for h in hyps)),
            "exact": int(items["exact_match"].sum()),
        },
        "per_domain": per_domain(domains, hyps, refs, items_fb),
        "latency_ms": latency,
        "examples": _examples(pairs, hyps, preds),
        **extra,
    }


def _selective(preds: Sequence[Any], sem: np.ndarray, hyps, refs) -> dict[str, Any]:
    """Abstention rate, calibration error (correct = semantic similarity >= 0.8) and the
    metrics of the answered questions, for systems that report confidences."""
    from celltext.inference.selector import CORRECT_AT, expected_calibration_error

    conf = [p.confidence for p in preds]
    if not preds or any(c is None for c in conf):
        return {}
    abstained = np.array([bool(getattr(p, "abstained", False)) for p in preds])
    correct = (np.asarray(sem) >= CORRECT_AT).astype(float)
    out: dict[str, Any] = {
        "abstention_rate": _r(abstained.mean()),
        "calibration_error": _r(expected_calibration_error(np.asarray(conf, float), correct)),
        "accuracy": _r(correct.mean()),
    }
    bins = np.minimum((np.asarray(conf, float) * 15).astype(int), 14)
    # per-bin sums, so splits can be pooled into one ECE / reliability diagram
    out["calibration_bins"] = [
        [int((bins == b).sum()), _r(np.asarray(conf, float)[bins == b].sum()),
         int(correct[bins == b].sum())]
        for b in range(15)
    ]  # fmt: skip
    kept = np.flatnonzero(~abstained)
    if len(kept):
        out["answered_semantic_similarity"] = _r(np.mean(np.asarray(sem)[kept]))
        out["answered_accuracy"] = _r(correct[kept].mean())
        out["answered_bleu"] = _r(M.bleu([hyps[i] for i in kept], [refs[i] for i in kept]))
    provenance = [getattr(p, "provenance", None) for p in preds]
    if any(provenance):
        out["provenance"] = {k: provenance.count(k) for k in sorted(set(map(str, provenance)))}
    return out


def answer_top1(
    core: np.ndarray, refs: Sequence[str], bank: Sequence[str], teacher: Any
) -> np.ndarray:
    """Per item: 1.0 if the bank answer nearest to the predicted embedding is the reference."""
    bank = list(bank)
    bank_embs = unit_rows(np.asarray(teacher.encode(bank), dtype=np.float32))  # (K, D)
    nearest = np.argmax(unit_rows(core) @ bank_embs.T, axis=1)  # (N,)
    return np.array(
        [float(bank[j] == r) for j, r in zip(nearest, refs, strict=True)], dtype=np.float64
    )


def _examples(pairs: Sequence[Any], hyps: Sequence[str], preds: Sequence[Any], k: int = 5):
    return [
        {"id": p.id, "question": p.question, "reference": p.answer, "answer": h,
         "fallback": bool(pr.fallback)}
        for p, h, pr in list(zip(pairs, hyps, preds, strict=True))[:k]
    ]  # fmt: skip


def evaluate_out_of_scope(
    system: Any,
    pairs: Sequence[Any],
    metric_teacher: Any,
    latency_samples: int = 0,
    on_progress: OnProgress | None = None,
) -> dict[str, Any]:
    """Questions nobody can answer from the release: how often the system abstains."""
    questions = [p.question for p in pairs]
    preds = in_chunks(system.predict, questions, system, "answer", on_progress)
    abstained = np.array([bool(getattr(p, "abstained", False)) for p in preds], dtype=float)
    kinds = [p.domain for p in pairs]
    return {
        "metrics": {"abstention_rate": _r(abstained.mean()) if len(preds) else 0.0},
        "counts": {"n": len(pairs), "abstained": int(abstained.sum())},
        "per_domain": {
            k: {"n": kinds.count(k), "abstention_rate": _r(abstained[np.array(kinds) == k].mean())}
            for k in sorted(set(kinds))
        },
        "latency_ms": {},
        "examples": [
            {"question": p.question, "answer": pr.answer, "abstained": bool(pr.abstained),
             "confidence": pr.confidence}
            for p, pr in list(zip(pairs, preds, strict=True))[:5]
        ],
    }  # fmt: skip


# -- decoder only ------------------------------------------------------------------------------
def evaluate_decoder(
    system: GenerativeSystem,
    pairs: Sequence[Any],
    metric_teacher: Any,
    latency_samples: int = LATENCY_SAMPLES,
    on_progress: OnProgress | None = None,
) -> dict[str, Any]:
    """Decode the teacher embedding of each reference answer; score the inversion."""
    questions = [p.question for p in pairs]
    refs = [p.answer for p in pairs]
    embs = np.asarray(system.teacher.encode(refs), dtype=np.float32)  # (N, D)
    hyps = in_chunks(system.decode, embs, system, "decode", on_progress)
    if on_progress is not None:
        on_progress("score", 0, 0)
    items = score_items(questions, hyps, refs, metric_teacher)
    items["embedding_preservation"] = M.embedding_preservation_scores(hyps, embs, system.teacher)
    overall = aggregate(np.arange(len(pairs)), hyps, refs, items)
    metrics = {k: v for k, v in overall.items() if k != "n"}
    metrics["unknown_token_rate"] = _r(M.unknown_token_rate(hyps, system.tokenizer))
    metrics["invalid_char_rate"] = _r(M.invalid_char_rate(hyps))
    latency = measure_latency(lambda i: system.decode(embs[int(i) : int(i) + 1]), [
        str(i) for i in range(min(latency_samples, len(pairs)))
    ], on_progress=on_progress)  # fmt: skip
    return {
        "metrics": metrics,
        "counts": {
            "n": len(pairs),
            "empty": int(sum(not h.strip() for h in hyps)),
            "exact": int(items["exact_match"].sum()),
        },
        "per_domain": per_domain([p.domain for p in pairs], hyps, refs, items),
        "latency_ms": latency,
        "examples": [
            {"reference": r, "decoded": h} for r, h in list(zip(refs, hyps, strict=True))[:5]
        ],
    }


# -- orchestration -----------------------------------------------------------------------------
def load_system(
    ref: str | None,
    release: Any,
    fallback: bool = True,
    options: PredictorConfig | None = None,
    device: str = "cpu",
) -> Any:
    """``retrieval`` -> :class:`RetrievalSystem`; otherwise a checkpoint reference ->
    :class:`PredictorSystem` (``fallback``) or :class:`GenerativeSystem`."""
    if ref == RETRIEVAL:
        from celltext.teacher import load_teacher

        return RetrievalSystem.from_release(release, load_teacher())
    from celltext.registry import resolve_model_ref
    from celltext.registry.checkpoint import load_checkpoint

    path = resolve_model_ref(ref)
    gen = GenerativeSystem.from_checkpoint(
        load_checkpoint(path), config=options, device=device, name=ref or "default"
    )
    return PredictorSystem.from_ref(ref, gen, release) if fallback else gen


def run_eval(
    ref: str | None,
    split: str,
    release: Any,
    fallback: bool = True,
    limit: int | None = None,
    decoder_only: bool = False,
    rerank: int = 0,
    latency_samples: int = LATENCY_SAMPLES,
    options: PredictorConfig | None = None,
    system: Any = None,
    metric_teacher: Any = None,
    rank_answers: bool = True,
    decode_mode: str = "generative",
    on_progress: OnProgress | None = None,
) -> dict[str, Any]:
    """Everything ``celltext eval`` reports, as one JSON-ready dict.

    ``rank_answers=False`` skips the ``answer_top1`` metric, which embeds every training
    answer (minutes on a CPU with a cold embedding cache). ``on_progress(stage, done,
    total)`` hears about every chunk answered and every question timed.
    """
    from celltext.teacher import load_teacher

    options = options or PredictorConfig()
    pairs = select_pairs(release.pairs(split), limit, seed=options.seed)
    if not pairs:
        raise ValueError(f"split {split!r} of release {release.version} is empty")
    if decoder_only and ref == RETRIEVAL:
        raise ValueError("--decoder-only needs a model with a decoder, not the retrieval baseline")
    if system is None:
        system = load_system(ref, release, fallback and not decoder_only, options)
        if decoder_only and decode_mode != "generative":
            system = EditingDecoder.from_ref(ref, system, release, decode_mode)
    metric_teacher = metric_teacher or load_teacher()
    if rerank > 1 and not isinstance(system, (GenerativeSystem, EditingDecoder)):
        raise ValueError("--rerank needs the generative path: add --no-fallback or --decoder-only")
    if split == "out_of_scope":
        task = evaluate_out_of_scope
    elif decoder_only:
        task = evaluate_decoder
    else:
        bank = None
        if rank_answers:
            bank = list(dict.fromkeys([p.answer for p in release.pairs("train")] +
                                      [p.answer for p in pairs]))  # fmt: skip

        def task(sys_, pairs_, teacher_, n_, on_progress=None):
            return evaluate_system(
                sys_, pairs_, teacher_, n_, answer_bank=bank, on_progress=on_progress
            )

    log.info("evaluating %s on %s/%s (%d pairs)", system.name, release.version, split, len(pairs))
    t0 = time.perf_counter()
    result = task(system, pairs, metric_teacher, latency_samples, on_progress=on_progress)
    report: dict[str, Any] = {
        "model": ref or "default",
        "system": system.info(),
        "task": "decoder" if decoder_only else "end_to_end",
        "release": {"version": release.version, "sha256": release.sha256},
        "split": split,
        "fallback": bool(isinstance(system, PredictorSystem)),
        "limit": limit,
        "decode": system.options.to_dict() if isinstance(system, GenerativeSystem) else None,
        "decode_mode": decode_mode if decoder_only else None,
        "metric_teacher": metric_teacher.id,
        **result,
    }
    if rerank > 1:
        reranked = system.with_options(rerank=rerank)
        rr = task(reranked, pairs, metric_teacher, latency_samples, on_progress=on_progress)
        report["rerank"] = {
            "candidates": rerank,
            "metrics": rr["metrics"],
            "latency_ms": rr["latency_ms"],
            "delta": {
                k: _r(rr["metrics"][k] - result["metrics"][k])
                for k in result["metrics"]
                if isinstance(result["metrics"][k], float)
            },
        }
    report["wall_s"] = round(time.perf_counter() - t0, 3)
    return report
