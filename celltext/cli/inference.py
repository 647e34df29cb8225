"""``celltext ask``, ``celltext answer`` (batch JSONL, resumable) and ``celltext decode``."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import typer

from celltext.cli.batch_io import AnswerOutput, OutputError, count_lines, read_jsonl
from celltext.cli.common import JSON_OPTION, emit_json, err_console, fail, quiet_unless_verbose
from celltext.textcheck import text_problem

log = logging.getLogger(__name__)

MODEL_OPTION = typer.Option(
    None, "--model", "-m",
    help="Checkpoint dir, registry ref (name@alias, name/version), or 'retrieval'. "
    "Default: the shipped model.",
)  # fmt: skip
BACKEND_OPTION = typer.Option(
    None, "--backend",
    help="auto (default, $CELLTEXT_BACKEND): onnxruntime when the model's ONNX export is built "
    "(`celltext export onnx`, make demo), else PyTorch; torch; onnx.",
)  # fmt: skip
NO_FALLBACK_OPTION = typer.Option(
    False, "--no-fallback", help="Return the generated answer whatever its quality."
)
THRESHOLD_OPTION = typer.Option(
    None, "--threshold", min=0.0, max=1.0, help="Confidence below which the fallback answers."
)


def set_torch_threads() -> None:
    """``$CELLTEXT_TORCH_THREADS`` (default 1) intra-op threads, if torch is in use: on a
    shared 2-core machine a second thread makes a batch-1 answer many times slower."""
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(max(1, int(os.environ.get("CELLTEXT_TORCH_THREADS", "1"))))


def _predictor(
    model: str | None, no_fallback: bool, threshold: float | None, backend: str | None = None
):
    from celltext.inference.factory import load_predictor

    try:
        predictor = load_predictor(
            model, fallback=not no_fallback, threshold=threshold, backend=backend
        )
    except (FileNotFoundError, KeyError, ValueError, RuntimeError) as exc:
        raise fail(f"cannot load model {model or '(default)'}: {exc}") from exc
    set_torch_threads()
    return predictor


def ask(
    question: str = typer.Argument(..., help="The question."),
    model: str | None = MODEL_OPTION,
    backend: str | None = BACKEND_OPTION,
    no_fallback: bool = NO_FALLBACK_OPTION,
    threshold: float | None = THRESHOLD_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Answer one question."""
    if not question.strip():
        raise fail("the question is empty", code=2)
    problem = text_problem(question)
    if problem is not None:
        raise fail(f"the question: {problem}", code=2)
    quiet_unless_verbose()
    predictor = _predictor(model, no_fallback, threshold, backend)
    (result,) = predictor.answer([question.strip()])
    if as_json:
        emit_json(result.to_dict())
        return
    typer.echo(result.answer)
    note = result.provenance
    if result.fallback_reason:
        note += f" ({result.fallback_reason})"
    if result.abstained and result.best_guess:
        err_console.print(f"[dim]best guess: {result.best_guess}[/]")
    if result.source_question and not result.abstained:
        err_console.print(f"[dim]from the known question: {result.source_question}[/]")
    err_console.print(
        f"[dim]confidence {result.confidence:.2f} · {note} · "
        f"{result.latency_ms:.0f} ms · {result.model}[/]"
    )


# -- batch ------------------------------------------------------------------------------------
def answer(
    input: Path = typer.Option(
        ...,
        "--input",
        "-i",
        exists=True,
        dir_okay=False,
        help="JSONL of {id, question}; an id is a string or an integer, kept as it is.",
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", dir_okay=False, help="JSONL to write (appended; resumable)."
    ),
    model: str | None = MODEL_OPTION,
    backend: str | None = BACKEND_OPTION,
    no_fallback: bool = NO_FALLBACK_OPTION,
    threshold: float | None = THRESHOLD_OPTION,
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Questions per model batch."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Answer every question of a JSONL file; re-running skips ids already in the output.
    Bad lines (an id seen before with another question too) are skipped and reported."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    try:  # before the model loads: a bad output fails at once
        sink = AnswerOutput(output, input)
    except OutputError as exc:
        raise fail(str(exc), code=2) from exc
    done, unreadable = sink.done, sink.unreadable
    try:
        predictor = _predictor(model, no_fallback, threshold, backend)
    except BaseException:
        sink.discard()
        raise
    bad: list[dict] = []
    replaced: list[dict] = []
    stats = {"written": 0, "skipped_existing": 0, "fallback": 0}
    start = time.perf_counter()
    columns = (TextColumn("answering"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with contextlib.closing(sink), Progress(*columns, console=err_console) as bar:
        task = bar.add_task("answer", total=count_lines(input))
        batch: list[tuple[int | str, str]] = []

        def flush() -> None:
            rows = predictor.answer([q for _, q in batch])
            records = [{"id": rid, "question": q, "answer": r.answer, "confidence": r.confidence,
                        "fallback": r.fallback, "fallback_reason": r.fallback_reason,
                        "provenance": r.provenance, "abstained": r.abstained,
                        "latency_ms": r.latency_ms, "model": r.model}
                       for (rid, q), r in zip(batch, rows, strict=True)]  # fmt: skip
            stats["fallback"] += sum(int(r.fallback) for r in rows)
            try:
                sink.write(records)  # synced: a killed run loses at most this batch
            except OutputError as exc:
                raise fail(str(exc)) from exc
            stats["written"] += len(batch)
            bar.advance(task, len(batch))
            batch.clear()

        for lineno, rid, q in read_jsonl(input, bad, replaced, seen=done):
            if rid in done:  # with the same question (another one is a bad line)
                stats["skipped_existing"] += 1
                bar.advance(task)
                continue
            done[rid] = (f"input line {lineno}", q)  # a repeated id inside the input: once
            batch.append((rid, q))
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
        bar.advance(task, len(bad))
    summary = {
        "input": str(input), "output": str(output), **stats, "malformed": bad,
        "replaced_characters": replaced, "unreadable_output_lines": unreadable,
        "fallback_rate": stats["fallback"] / stats["written"] if stats["written"] else 0.0,
        "seconds": round(time.perf_counter() - start, 3), "model": predictor.info.label,
    }  # fmt: skip
    if as_json:
        emit_json(summary)
    else:
        err_console.print(
            f"wrote {stats['written']} answers to {output} ({stats['skipped_existing']} already "
            f"there, {len(bad)} bad lines skipped) in {summary['seconds']} s"
        )
        if replaced or unreadable:
            err_console.print(
                f"[yellow]{len(replaced)} input line(s) had non-UTF-8 bytes replaced; "
                f"{len(unreadable)} unreadable output line(s) kept[/]"
            )


# -- decode ------------------------------------------------------------------------------------
MAX_DECODE_VALUES = 1 << 28  # 1 GiB as float32: ~700k rows of 384-D, far beyond a decode run


def read_embeddings(path: Path) -> np.ndarray:
    """Raw embeddings (N, D) or (D,) as float32 from an untrusted ``.npy`` file.

    The file is memory-mapped first, so a header whose shape does not fit the file (one
    claiming 143 GiB) is refused before anything is allocated; an ``.npz`` archive, an empty
    file and anything but real numbers (complex, text, bool, objects) raise ``ValueError``.
    """
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except EOFError as exc:
        raise ValueError("empty file, not a .npy array") from exc
    except (ValueError, OSError, OverflowError) as exc:
        raise ValueError(f"not a readable .npy array ({exc})") from exc
    if not isinstance(arr, np.ndarray):  # np.load opened an archive
        arr.close()
        raise ValueError("an .npz archive, not a .npy array (write one with numpy.save)")
    if arr.dtype.kind not in "fiu":  # complex would silently lose its imaginary part
        raise ValueError(f"expected an array of real numbers, got dtype {arr.dtype}")
    if arr.ndim not in (1, 2) or arr.size > MAX_DECODE_VALUES:
        raise ValueError(
            f"expected shape (N, D) or (D,) of at most {MAX_DECODE_VALUES} values, got shape "
            f"{arr.shape}"
        )
    return np.array(arr, dtype=np.float32)  # (N, D) or (D,): read out of the map


def decode(
    input: Path = typer.Option(
        ..., "--input", "-i", exists=True, dir_okay=False, help="(N, D) or (D,) .npy"
    ),
    model: str | None = MODEL_OPTION,
    backend: str | None = BACKEND_OPTION,
    mode: str = typer.Option(
        "edit",
        "--mode",
        help="generative (the decoder alone), edit (edit the nearest phrase-bank text) or "
        "search (best by teacher cosine of plain, edited and retrieved texts).",
    ),  # fmt: skip
    search_prototypes: int = typer.Option(
        1, "--search-prototypes", min=1, help="search: nearest phrase-bank texts, each edited."
    ),
    rerank: int = typer.Option(
        0, "--rerank", min=0, help="search/edit: also N-1 sampled edits per prototype, ranked."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Decode raw teacher embeddings (.npy) to text; checks the dimension against the model."""
    from celltext.inference.options import DECODE_MODES
    from celltext.inference.predictor import DimensionError

    if mode not in DECODE_MODES:
        raise fail(f"--mode must be generative, edit or search, not {mode!r}", code=2)

    try:
        embs = read_embeddings(input)
    except ValueError as exc:
        raise fail(f"{input}: {exc}", code=2) from exc
    predictor = _predictor(model, no_fallback=False, threshold=None, backend=backend)
    decoding = {"search": {"prototypes": search_prototypes}, "rerank": {"candidates": rerank}}
    config = predictor.config.replace(decoding=decoding)
    try:  # no rows: no model call (the predictor returns [] after checking the dimension)
        decoded = predictor.decode(embs, mode, config)
    except DimensionError as exc:
        raise fail(f"{input}: {exc}", code=2) from exc
    result = {
        "texts": [{"text": d.text, "similarity": d.similarity} for d in decoded],
        "dim": predictor.dim,
        "model": predictor.info.label,
        "mode": mode,
    }
    if as_json:
        emit_json(result)
        return
    for d in decoded:
        typer.echo(d.text)


def register(app: typer.Typer) -> None:
    """Add ``ask``, ``answer`` and ``decode``."""
    app.command("ask")(ask)
    app.command("answer")(answer)
    app.command("decode")(decode)
