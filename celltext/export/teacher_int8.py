"""An export with the int8 teacher (:mod:`celltext.teacher.int8`), its agreement with the
float32 teacher, and the quality of the answers it serves.

:func:`quantize_export_teacher` turns the ``teacher.onnx`` of an export being written
(:func:`celltext.export.onnx.export_model` with ``teacher="int8"``, the served export) into
int8 and changes the teacher's id to ``<id>-int8``; everything that serves that export
(``celltext ask/serve``, ``celltext bench``) then embeds the questions *and* builds its
phrase bank with the int8 teacher (the bank's cache key holds the teacher id).
:func:`teacher_agreement` compares the two teachers' embeddings of the same texts;
:func:`int8_teacher_quality` answers a release split with PyTorch, the float export and the
int8 one (:func:`celltext.export.parity.parity_report`: identical answers, served answers,
semantic similarity to the references by the float teacher). ``celltext teacher int8`` runs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from celltext.teacher.int8 import QUANTIZATION, agreement, int8_id, quantize_teacher

TEACHER_FILE = "teacher.onnx"


def quantize_export_teacher(folder: Path, teacher: dict[str, Any]) -> dict[str, Any]:
    """Quantise the float32 ``teacher.onnx`` being exported into ``folder`` (its manifest
    entry ``teacher``) to int8 in place; returns the entry of the int8 teacher (its id
    ``<id>-int8``, the float teacher's id and the quantisation)."""
    # quantize_teacher stages the int8 graph in a temporary folder and loads it whole
    # before it writes over the float32 graph and its weights
    quantize_teacher(folder / TEACHER_FILE, folder / TEACHER_FILE, teacher.get("external_data"))
    return teacher | {"id": int8_id(teacher["id"]), "float_id": teacher["id"],
                      "quantized": QUANTIZATION}  # fmt: skip


def sample_texts(release: Any, n: int, split: str = "test_paraphrase") -> list[str]:
    """``n`` texts of ``release``'s ``split``: questions and answers alternately."""
    texts: list[str] = []
    for pair in release.pairs(split):
        texts += [pair.question, pair.answer]
        if len(texts) >= n:
            break
    return texts[:n]


def teacher_agreement(float_dir: str | Path, int8_dir: str | Path, texts: Sequence[str]):
    """Cosine of the int8 teacher's embedding of each text to the float teacher's
    (:func:`celltext.teacher.int8.agreement`), with both teachers' ids."""
    from celltext.inference.onnx_backend import load_export

    ref, q8 = load_export(float_dir).teacher, load_export(int8_dir).teacher
    out = agreement(ref.encode(list(texts)), q8.encode(list(texts)))
    return {"float_teacher": ref.id, "int8_teacher": q8.id, **out}


def int8_teacher_quality(
    ref: str | None,
    float_dir: str | Path,
    int8_dir: str | Path,
    release: Any,
    split: str = "test_paraphrase",
    limit: int = 300,
) -> dict[str, Any]:
    """Answer the first ``limit`` questions of ``release``'s ``split`` with the checkpoint
    ``ref`` on PyTorch and with both exports on onnxruntime, each with a phrase bank built
    by its own teacher; the parity report of the three (``paths.onnx``: float teacher,
    ``paths.onnx-teacher-int8``: int8 teacher; semantic similarity by the float teacher)."""
    from celltext.export.parity import parity_report
    from celltext.index import RetrievalIndex
    from celltext.inference.factory import load_predictor
    from celltext.inference.predictor import Predictor

    pairs = release.pairs(split)[:limit]
    questions, references = [p.question for p in pairs], [p.answer for p in pairs]
    onnx = {}
    for name, folder in (("onnx", float_dir), ("onnx-teacher-int8", int8_dir)):
        p = load_predictor(str(folder), fallback=False)
        bank = RetrievalIndex.for_release(p.teacher, release, "train")  # by its own teacher
        cfg = p.config.replace(fallback={"enabled": True}, bank={"release": release.version})
        onnx[name] = Predictor(p.teacher, p.backend, bank, cfg, p.info, p.selector, p.ranker)
    torch_pred = load_predictor(
        ref, config=onnx["onnx"].config, bank=onnx["onnx"].bank, backend="torch"
    )
    report = parity_report(
        torch_pred, onnx, questions, references, split=f"{release.version}/{split}"
    )
    report["teachers"] = {name: p.teacher.id for name, p in onnx.items()}
    return report


__all__ = [
    "int8_teacher_quality", "quantize_export_teacher", "sample_texts", "teacher_agreement",
]  # fmt: skip
