"""How far each stage is from the hardware: floors measured on the spot (``celltext bench``).

A stage's latency counts everything it does: Python around the networks, the tokeniser,
checks, the decoding loop. Its *floor* is the least its design can cost on this machine, the
networks' calls alone, timed in the same process on the same questions just before:

- ``teacher_pass``: one run of the teacher network over an already tokenised question;
- ``index_scan``: one scan of the phrase bank (the (N, D) question matrix times a query,
  then the argmax); ``index_search``: the bank's own look-up of the nearest question (its
  HNSW graph where it has one, :mod:`celltext.ann`; else the same scan), what every
  retrieval costs at least;
- ``core_call``: one call of the core;
- ``decoder_call``: one decoder call, the prefill (K soft tokens and ``<bos>``), the least a
  decode costs; ``decoder_edit_call`` the first call with a prototype (decoders that edit:
  the block prefill of the prototype as the draft where the export has it, all a copied
  prototype costs, see :mod:`celltext.inference.speculative`; else the prefill);
  ``decoder_step``: one more token.

Each is a latency summary (ms, batch 1, after a warm-up). The floor of a stage adds the calls
it cannot avoid (:func:`stage_floors`: ``retrieval`` = teacher pass + index scan,
``generative`` = teacher pass + core call + decoder call, ``end_to_end`` = teacher pass +
index search + core call + one decoder call, with a prototype when the decoder edits), and
:func:`shares` gives each stage's part of the end-to-end time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from celltext.benchmarking.resources import sync
from celltext.metrics import latency_summary

WARMUP = 2


def _timed(
    setups: Sequence[Any], call: Callable[[Any], Any], device: str = "cpu"
) -> dict[str, float]:
    """Latency summary (ms) of ``call(x)`` for each prepared ``x`` of ``setups`` (the first
    :data:`WARMUP` also run untimed first); ``x`` may be a zero-argument function giving the
    argument, made untimed just before its call. GPU work is waited for (``device``)."""
    for x in list(setups)[:WARMUP]:
        call(x() if callable(x) else x)
    times = []
    for x in setups:
        arg = x() if callable(x) else x
        sync(device)
        t0 = time.perf_counter()
        call(arg)
        sync(device)
        times.append((time.perf_counter() - t0) * 1000.0)
    return {
        k: round(v, 4) if isinstance(v, float) else v for k, v in latency_summary(times).items()
    }


def measure_floors(
    teacher: Any,
    questions: Sequence[str],
    index: Any = None,
    predictor: Any = None,
    device: str = "cpu",
) -> dict[str, dict[str, float]]:
    """The floors of the module docstring for ``questions`` (batch 1): ``teacher`` (with
    ``features``/``forward``), ``index`` (a :class:`~celltext.index.RetrievalIndex`) and
    ``predictor`` (a :class:`~celltext.inference.predictor.Predictor` with a backend; None:
    no model floors), whose core and decoder run on ``device``. A teacher without
    ``features``/``forward`` (a stand-in) gets no ``teacher_pass`` floor."""
    questions = list(questions)
    out: dict[str, dict[str, float]] = {}
    if hasattr(teacher, "features") and hasattr(teacher, "forward"):  # not every teacher can
        feats = [teacher.features([q]) for q in questions]  # tokenise apart from its pass
        out["teacher_pass"] = _timed(feats, teacher.forward)
    q_embs = np.asarray(teacher.encode(questions, cache=False), dtype=np.float32)  # (n, D)
    if index is not None:
        matrix = index.question_embs  # (N, D)
        out["index_scan"] = _timed(list(q_embs), lambda q: int(np.argmax(matrix @ q)))
        out["index_search"] = _timed(list(q_embs), lambda q: index.top_questions(q[None], 1))
    if predictor is None or predictor.backend is None:
        return out
    backend = predictor.backend
    rows = [q_embs[i : i + 1] for i in range(len(q_embs))]  # (1, D) each
    out["core_call"] = _timed(rows, backend.core, device)
    embs = [np.asarray(predictor.core(r), dtype=np.float32) for r in rows]  # as decoded
    out["decoder_call"] = _timed([lambda e=e: backend.stepper(e, None) for e in embs],
                                 lambda st: st.first(), device)  # fmt: skip
    protos: list[Any] = [None] * len(embs)
    if backend.capabilities.edits and index is not None:
        texts = [m.text for m in index.by_answer(np.concatenate(embs))]
        protos = list(predictor.decoding.proto_ids(texts)[:, None])  # (1, P) each
        out["decoder_edit_call"] = _timed(
            [lambda e=e, p=p: backend.stepper(e, p) for e, p in zip(embs, protos, strict=True)],
            lambda st: _first_edit_call(st, backend.special),
            device,
        )
    out["decoder_step"] = _timed(
        [lambda e=e, p=p: _after_first(backend, e, p) for e, p in zip(embs, protos, strict=True)],
        lambda args: args[0].next(args[1]),
        device,
    )
    return out


def _first_edit_call(stepper: Any, special: Any) -> Any:
    """The first decoder call of a speculative edit: the block prefill with ``<bos>`` and
    the whole prototype as the draft where the stepper has it, else the prefill."""
    if not getattr(stepper, "drafts_first", False):
        return stepper.first()
    proto = [int(t) for t in stepper.proto[0] if t != special.pad_id]
    return stepper.first_block(np.array([[special.bos_id, *proto]], dtype=np.int64))


def _after_first(backend: Any, emb: np.ndarray, proto: np.ndarray | None) -> tuple[Any, Any]:
    """A stepper past its prefill, and the greedy first token to feed it."""
    stepper = backend.stepper(emb, proto)
    return stepper, stepper.first().argmax(axis=-1)


def stage_floors(floors: dict[str, dict[str, float]]) -> dict[str, float]:
    """The p50 floor of each ``celltext bench`` stage: the sum of the calls it cannot avoid
    (module docstring); stages whose calls were not measured are left out."""
    p50 = {name: summary["p50"] for name, summary in floors.items()}
    decoder = p50.get("decoder_edit_call", p50.get("decoder_call"))
    parts = {
        "teacher": ["teacher_pass"],
        "retrieval": ["teacher_pass", "index_search"],
        "core": ["core_call"],
        "decoder": ["decoder_call"],
        "generative": ["teacher_pass", "core_call", "decoder_call"],
    }
    out = {
        stage: round(sum(p50[c] for c in calls), 4)
        for stage, calls in parts.items()
        if all(c in p50 for c in calls)
    }
    if decoder is not None and all(c in p50 for c in ("teacher_pass", "index_search", "core_call")):
        out["end_to_end"] = round(
            p50["teacher_pass"] + p50["index_search"] + p50["core_call"] + decoder, 4
        )
    return out


def shares(latency_ms: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each stage's p50 as a fraction of the end-to-end p50 (the production predictor's,
    else the generative path's). Stages overlap (retrieval includes a teacher pass), so the
    shares do not add up to 1."""
    total = latency_ms.get("end_to_end", latency_ms.get("generative"))
    if not total or total["p50"] <= 0:
        return {}
    return {stage: round(lat["p50"] / total["p50"], 4) for stage, lat in latency_ms.items()}


def floors_report(
    teacher: Any,
    questions: Sequence[str],
    latency_ms: dict[str, Any],
    index: Any = None,
    predictor: Any = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """The keys ``celltext bench`` adds per backend: ``floors_ms`` (the calls' summaries),
    ``stage_floor_ms`` (:func:`stage_floors`) and ``share_of_end_to_end`` (:func:`shares`)."""
    floors = measure_floors(teacher, questions, index, predictor, device)
    return {
        "floors_ms": floors,
        "stage_floor_ms": stage_floors(floors),
        "share_of_end_to_end": shares(latency_ms),
    }


__all__ = ["floors_report", "measure_floors", "shares", "stage_floors"]
