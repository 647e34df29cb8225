"""Preparation of a run's data, done once per run directory (nanoGPT's ``prepare.py``).

The tokenizer is trained on the run's training texts and the release is embedded by the
teacher and tokenised into ``data.safetensors``/``data.json`` (see
:mod:`celltext.training.data`). A resumed run, and every process after the main one, reads
what is there: nothing is embedded twice. The teacher and the release are arguments, so a
caller (a test, the ablation) passes its own; by default they are loaded by the names the
preset gives.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from celltext.registry.tensorio import write_bytes_atomic
from celltext.training.args import Preset
from celltext.training.data import (
    DATA_JSON,
    RunData,
    build_run_data,
    load_run_data,
    save_run_data,
    select_texts,
)

log = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.json"


def is_prepared(directory: Path) -> bool:
    """Whether ``directory`` already holds the tokenizer and the run data."""
    return (directory / TOKENIZER_FILE).is_file() and (directory / DATA_JSON).is_file()


def prepare(
    directory: Path,
    preset: Preset,
    *,
    teacher: Any = None,
    release: Any = None,
    progress: bool = True,
) -> None:
    """Write the tokenizer and the embedded, tokenised data of ``preset`` into ``directory``.

    ``teacher``/``release`` default to ``load_teacher(preset.teacher)`` and
    ``load_release(preset.data.release)``. Parts already written are kept.
    """
    from celltext.tokenizer import CellTokenizer

    if is_prepared(directory):
        return
    t0 = time.perf_counter()
    if release is None:
        from celltext.data.release import load_release

        release = load_release(preset.data.release)
    if teacher is None:
        from celltext.teacher import load_teacher

        teacher = load_teacher(preset.teacher)
    tok_file = directory / TOKENIZER_FILE
    if not tok_file.is_file():
        texts = select_texts(release, preset.data)["decoder_texts"]
        tokenizer = CellTokenizer.train(texts, vocab_size=preset.vocab_size)
        write_bytes_atomic(tok_file, tokenizer.to_str().encode())
    tokenizer = CellTokenizer.load(tok_file)
    save_run_data(build_run_data(release, teacher, tokenizer, preset.data, progress), directory)
    log.info("data prepared in %.1fs", time.perf_counter() - t0)


def load_prepared(directory: Path) -> tuple[RunData, Any]:
    """The run data and the tokenizer :func:`prepare` wrote."""
    from celltext.tokenizer import CellTokenizer

    return load_run_data(directory), CellTokenizer.load(directory / TOKENIZER_FILE)
