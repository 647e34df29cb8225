"""Evaluation of a system on a release split: quality, per-domain breakdown, latency.

``evaluate_system`` scores end-to-end answers (generative, Predictor or retrieval);
``evaluate_decoder`` scores the decoder alone on the embedding-inversion task (decode the
teacher embedding of each reference answer); ``evaluate_out_of_scope`` measures abstention
on questions nobody can answer. All are deterministic: the subset chosen by ``limit`` is a
fixed-seed sample, greedy decoding has no randomness and reranking seeds its sampler per
batch. Latency numbers (``latency_ms``) are the only fields that vary between runs;
everything under ``metrics``, ``counts`` and ``per_domain`` does not.

:func:`run_eval` is what ``celltext eval`` calls: an :class:`EvalRequest` (the options) ->
:func:`load_system` (a :class:`~celltext.evaluation.systems.System`, see
:mod:`celltext.evaluation.systems`) -> the evaluation the request names -> one JSON-ready
report. Per-item scores and aggregates are :mod:`celltext.evaluation.scoring`.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from celltext import metrics as M
from celltext.data.heldout import NATURAL_SPLITS
from celltext.evaluation.scoring import (
    aggregate,
    core_scores,
    per_domain,
    rounded,
    score_items,
    selective_metrics,
)
from celltext.evaluation.systems import (
    Answerer,
    Decoder,
    EditingDecoder,
    GenerativeSystem,
    PredictorSystem,
    RetrievalSystem,
    System,
)
from celltext.inference.options import PredictorConfig
from celltext.inference.records import RETRIEVAL

log = logging.getLogger(__name__)

LATENCY_SAMPLES = 32
OUT_OF_SCOPE = "out_of_scope"

# ``on_progress(stage, done, total)``: items of ``stage`` done so far (for a progress bar).
OnProgress = Callable[[str, int, int], None]


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
    return {
        k: (rounded(v) if isinstance(v, float) else v) for k, v in M.latency_summary(times).items()
    }


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


# -- end to end --------------------------------------------------------------------------------
def evaluate_system(
    system: Answerer,
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
    items_fb.update(core_scores(preds, refs, system.teacher, answer_bank))
    metrics = {
        **{k: v for k, v in overall.items() if k != "n"},
        "fallback_rate": rounded(fallback.mean()) if len(fallback) else 0.0,
        "unknown_token_rate": rounded(M.unknown_token_rate(hyps, system.tokenizer)),
        "invalid_char_rate": rounded(M.invalid_char_rate(hyps)),
    }
    for key in ("core_cosine", "answer_top1"):
        if key in items_fb:
            metrics[key] = rounded(items_fb[key].mean())
    selective = selective_metrics(preds, items["semantic_similarity"], hyps, refs)
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


def _examples(pairs: Sequence[Any], hyps: Sequence[str], preds: Sequence[Any], k: int = 5):
    return [
        {"id": p.id, "question": p.question, "reference": p.answer, "answer": h,
         "fallback": bool(pr.fallback)}
        for p, h, pr in list(zip(pairs, hyps, preds, strict=True))[:k]
    ]  # fmt: skip


def evaluate_out_of_scope(
    system: Answerer,
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
    domain = np.array(kinds)  # (N,)
    return {
        "metrics": {"abstention_rate": rounded(abstained.mean()) if len(preds) else 0.0},
        "counts": {"n": len(pairs), "abstained": int(abstained.sum())},
        "per_domain": {
            k: {"n": kinds.count(k), "abstention_rate": rounded(abstained[domain == k].mean())}
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
    system: Decoder,
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
    metrics["unknown_token_rate"] = rounded(M.unknown_token_rate(hyps, system.tokenizer))
    metrics["invalid_char_rate"] = rounded(M.invalid_char_rate(hyps))
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
@dataclass(frozen=True)
class EvalRequest:
    """What to evaluate: the options of ``celltext eval``."""

    ref: str | None
    """Model reference (checkpoint dir, ``name@alias``, ``name/version``), ``retrieval``
    (the nearest-neighbour baseline) or None (the shipped default model)."""
    split: str
    """A release split or a held-out set (:mod:`celltext.data.heldout`)."""
    fallback: bool = True
    """The production path (quality check, selector, fallback); False: generative only."""
    decoder_only: bool = False
    """Decode the teacher embeddings of the split's answers (embedding inversion)."""
    decode_mode: str = "generative"
    """With ``decoder_only``: ``generative`` (the decoder alone), ``edit`` or ``search``
    (retrieve and edit, :class:`~celltext.evaluation.systems.EditingDecoder`)."""
    limit: int | None = None
    """A fixed-seed sample of this many pairs (None: all)."""
    rerank: int = 0
    """Also evaluate best-of-``rerank`` by teacher cosine (> 1; the generative path only)."""
    latency_samples: int = LATENCY_SAMPLES
    """Questions timed one at a time (batch 1, warm)."""
    options: PredictorConfig = field(default_factory=PredictorConfig)
    """Decoding options; ``options.decoding.seed`` also seeds the ``limit`` sample."""
    rank_answers: bool = True
    """Rank the core's prediction among every training answer (``answer_top1``; embeds
    them all: minutes on a CPU with a cold embedding cache)."""

    def __post_init__(self) -> None:
        if self.decoder_only and self.ref == RETRIEVAL:
            raise ValueError(
                "--decoder-only needs a model with a decoder, not the retrieval baseline"
            )

    @property
    def task(self) -> str:
        """``decoder`` or ``end_to_end`` (the report's ``task``)."""
        return "decoder" if self.decoder_only else "end_to_end"


def load_system(request: EvalRequest, release: Any) -> Answerer | Decoder:
    """The system ``request`` evaluates: ``retrieval`` -> :class:`RetrievalSystem`; a
    checkpoint reference -> :class:`PredictorSystem` (``fallback``), the
    :class:`GenerativeSystem`, or for ``decoder_only`` with an ``edit``/``search`` mode an
    :class:`EditingDecoder` with the phrase bank of ``release``'s train split."""
    if request.ref == RETRIEVAL:
        from celltext.teacher import load_teacher

        return RetrievalSystem.from_release(release, load_teacher())
    from celltext.registry import resolve_model_ref
    from celltext.registry.checkpoint import load_checkpoint

    ckpt = load_checkpoint(resolve_model_ref(request.ref))
    gen = GenerativeSystem.from_checkpoint(ckpt, request.options, name=request.ref or "default")
    if request.decoder_only and request.decode_mode != "generative":
        return EditingDecoder.from_ref(request.ref, gen, release, request.decode_mode)
    if request.fallback and not request.decoder_only:
        return PredictorSystem.from_ref(request.ref, gen, release)
    return gen


def _evaluation(request: EvalRequest, release: Any, pairs: Sequence[Any]) -> Callable[..., dict]:
    """The evaluation ``request`` names, called as ``(system, pairs, metric_teacher,
    latency_samples, on_progress=...)``."""
    if request.split == OUT_OF_SCOPE:
        return evaluate_out_of_scope
    if request.split in NATURAL_SPLITS and not request.decoder_only:
        from celltext.evaluation.natural import evaluate_natural

        return evaluate_natural
    if request.decoder_only:
        return evaluate_decoder
    bank = None
    if request.rank_answers:
        answers = [p.answer for p in release.pairs("train")] + [p.answer for p in pairs]
        bank = list(dict.fromkeys(answers))
    return functools.partial(evaluate_system, answer_bank=bank)


def run_eval(
    request: EvalRequest,
    release: Any,
    system: System | None = None,
    metric_teacher: Any = None,
    on_progress: OnProgress | None = None,
) -> dict[str, Any]:
    """Everything ``celltext eval`` reports for ``request`` on ``release``, as one JSON-ready
    dict. ``system`` and ``metric_teacher`` replace the loaded ones (tests, the ablation);
    ``on_progress(stage, done, total)`` hears about every chunk answered and every question
    timed."""
    from celltext.teacher import load_teacher

    pairs = select_pairs(
        release.pairs(request.split), request.limit, seed=request.options.decoding.seed
    )
    if not pairs:
        raise ValueError(f"split {request.split!r} of release {release.version} is empty")
    system = system or load_system(request, release)
    reranked = system.reranked(request.rerank) if request.rerank > 1 else None
    metric_teacher = metric_teacher or load_teacher()
    evaluation = _evaluation(request, release, pairs)
    n_timed = request.latency_samples
    log.info("evaluating %s on %s/%s (%d pairs)", system.name, release.version, request.split,
             len(pairs))  # fmt: skip
    t0 = time.perf_counter()
    result = evaluation(system, pairs, metric_teacher, n_timed, on_progress=on_progress)
    report: dict[str, Any] = {
        "model": request.ref or "default",
        "system": system.info(),
        "task": request.task,
        "release": {"version": release.version, "sha256": release.sha256},
        "split": request.split,
        "fallback": bool(system.fallback),
        "limit": request.limit,
        "decode": system.decode_settings(),
        "decode_mode": request.decode_mode if request.decoder_only else None,
        "metric_teacher": metric_teacher.id,
        **result,
    }
    if reranked is not None:
        rr = evaluation(reranked, pairs, metric_teacher, n_timed, on_progress=on_progress)
        report["rerank"] = {
            "candidates": request.rerank,
            "metrics": rr["metrics"],
            "latency_ms": rr["latency_ms"],
            "delta": {
                k: rounded(rr["metrics"][k] - v)
                for k, v in result["metrics"].items()
                if isinstance(v, float)
            },
        }
    report["wall_s"] = round(time.perf_counter() - t0, 3)
    return report
