"""The int8 teacher: the exported teacher graph with dynamically quantised int8 weights.

``onnxruntime.quantization.quantize_dynamic`` stores every weight matrix of the teacher's
``teacher.onnx`` (:mod:`celltext.export.onnx`) as int8 with one scale per output channel
(``per_channel=True``) and quantises the activations on the fly, so the matrix products run
as int8 ``MatMulInteger`` (Jacob et al. 2018, "Quantization and Training of Neural Networks
for Efficient Integer-Arithmetic-Only Inference"; the recipe of onnxruntime's transformer
quantisation examples). The file shrinks 4x (all-MiniLM-L6-v2: 90 -> 23 MB); embeddings stay
within cosine 0.98 of float32 (``tests/export/test_teacher_int8.py``).

An int8 teacher gives other embeddings, so it is another teacher: its id is the float
teacher's with :data:`INT8_SUFFIX` (``all-MiniLM-L6-v2-int8``), and the phrase bank, whose
cache key holds the teacher id (:meth:`celltext.index.RetrievalIndex.for_release`), is built
with it, so queries and bank are embedded alike. The model's core and decoder are unchanged
(trained on float32 embeddings). The served export has the int8 teacher
(:data:`celltext.inference.export_files.SERVED_TEACHER`; ``celltext export onnx --teacher
float32`` writes the float32 one); ``celltext teacher int8`` compares the two.

Nothing here imports torch or another celltext package (the export imports this module).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

INT8_SUFFIX = "-int8"
QUANTIZATION = "dynamic int8, per-channel weights (onnxruntime.quantization.quantize_dynamic)"


def int8_id(teacher_id: str) -> str:
    """The id of the int8 variant of teacher ``teacher_id`` (an id already int8 is kept)."""
    return teacher_id if is_int8(teacher_id) else teacher_id + INT8_SUFFIX


def is_int8(teacher_id: str) -> bool:
    """Whether ``teacher_id`` names an int8 teacher."""
    return teacher_id.endswith(INT8_SUFFIX)


def quantize_teacher(src: str | Path, dst: str | Path, data_name: str | None = None) -> Path:
    """Write ``dst``, the teacher graph ``src`` (weights beside it or inside) with dynamic
    per-channel int8 weights; with ``data_name`` the weights go to that file beside ``dst``
    (ONNX external data, mapped from the file as the float teacher's are)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, dst = Path(src), Path(dst)
    with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
        staged = Path(tmp) / "teacher_int8.onnx"
        quantize_dynamic(str(src), str(staged), per_channel=True, weight_type=QuantType.QInt8)
        model = onnx.load(str(staged))
    if data_name is None:
        onnx.save_model(model, str(dst))
    else:
        (dst.parent / data_name).unlink(missing_ok=True)  # onnx appends to an existing file
        onnx.save_model(model, str(dst), save_as_external_data=True,
                        all_tensors_to_one_file=True, location=data_name,
                        size_threshold=1024)  # fmt: skip
    log.info("int8 teacher written to %s", dst)
    return dst


def agreement(reference: np.ndarray, other: np.ndarray) -> dict[str, float | int]:
    """Cosine of each row of ``other`` (N, D) to the same row of ``reference`` (N, D):
    count, minimum, 5th percentile and mean."""
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(other, dtype=np.float64)
    norms = np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    cos = np.sum(a * b, axis=1) / norms  # (N,)
    if not len(cos):
        return {"n": 0}
    return {
        "n": int(len(cos)),
        "min_cosine": round(float(cos.min()), 5),
        "p05_cosine": round(float(np.percentile(cos, 5)), 5),
        "mean_cosine": round(float(cos.mean()), 5),
    }


__all__ = ["INT8_SUFFIX", "QUANTIZATION", "agreement", "int8_id", "is_int8", "quantize_teacher"]
