"""Loading what a :class:`~celltext.inference.predictor.Predictor` needs from a model reference.

The reference is resolved by :func:`celltext.registry.resolve_model_ref` (checkpoint dir,
``name@alias``, ``name/version``, ``None`` for the shipped default); ``retrieval`` means no
model at all, only the teacher and the phrase bank. The teacher is the one the checkpoint
was trained with; the phrase bank comes from the configured release (built once, cached).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from celltext.index import RetrievalIndex
from celltext.inference.backend import PredictorParts, Teacher
from celltext.inference.options import PredictorConfig
from celltext.inference.records import RETRIEVAL, ModelInfo, model_info_from_checkpoint

log = logging.getLogger(__name__)


def is_onnx_export(ref: str | Path) -> bool:
    """Whether ``ref`` is a directory written by ``onnx_export.export_model``."""
    path = Path(ref)
    return (path / "manifest.json").is_file() and (path / "core.onnx").is_file()


BACKENDS = ("auto", "torch", "onnx")


def export_dir_for(checkpoint: str | Path, teacher: str | None = None) -> Path:
    """Where the ONNX export of ``checkpoint`` with the ``teacher`` precision (default
    :data:`~celltext.inference.export_files.SERVED_TEACHER`) lives once built (``celltext
    export onnx`` without ``--out``, or ``make demo``): ``cache_dir()/onnx/<name>-<key>``,
    the key a hash of the checkpoint's file hashes, of its selectors and ``ranker.npz``, of
    the export format and of the precision, so retraining, refitting a selector or the
    ranker, a new export layout or another teacher never reuses a stale export."""
    from celltext.inference.export_files import FORMAT_VERSION, SELECTOR_FILES, SERVED_TEACHER
    from celltext.paths import cache_dir

    checkpoint = Path(checkpoint)
    h = hashlib.sha256((checkpoint / "metadata.json").read_bytes())
    h.update(f"export format {FORMAT_VERSION}".encode())  # a new layout, a new folder
    teacher = teacher or SERVED_TEACHER
    if teacher != "float32":  # (float32 keeps the key it always had)
        h.update(f"teacher {teacher}".encode())
    selectors = {SELECTOR_FILES["float32"], SELECTOR_FILES[teacher]}  # its own, or float's
    for name in (*sorted(selectors), "ranker.npz"):  # refit or retrained: a new export
        if (checkpoint / name).is_file():
            h.update((checkpoint / name).read_bytes())
    return cache_dir() / "onnx" / f"{checkpoint.resolve().name}-{h.hexdigest()[:16]}"


def choose_backend(ref: str | None, backend: str | None = None) -> tuple[str, Path | None]:
    """(``"torch"`` or ``"onnx"``, the export directory for onnx) for a model reference.

    ``backend`` (default ``$CELLTEXT_BACKEND``, else ``auto``): ``auto`` takes onnxruntime
    when ``ref`` is an export or the checkpoint's export has been built, else PyTorch;
    ``onnx`` insists (an error names the command that builds the export); ``torch`` never
    uses an export.
    """
    backend = backend or os.environ.get("CELLTEXT_BACKEND") or "auto"
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if ref == RETRIEVAL:
        return "torch", None  # no network at all: only the teacher, which stays as it is
    if ref is not None and is_onnx_export(ref):
        if backend == "torch":
            raise ValueError(f"{ref} is an ONNX export; the torch backend needs a checkpoint")
        return "onnx", Path(ref)
    if backend == "torch":
        return "torch", None
    try:
        built = export_dir_for(resolve_ref(ref))
    except OSError:  # no readable metadata.json: the checkpoint loader reports it clearly
        built = None
    if built is not None and is_onnx_export(built):
        return "onnx", built
    if backend == "onnx":
        where = "" if ref is None else f" --model {ref}"
        raise FileNotFoundError(
            f"no ONNX export of {ref or 'the default model'} yet; build it with "
            f"`celltext export onnx{where}` (make demo does it for the default model)"
        )
    return "torch", None


def resolve_ref(ref: str | None) -> Path:
    """Checkpoint directory of ``ref`` (see module docstring)."""
    from celltext.registry import resolve_model_ref

    return Path(resolve_model_ref(ref))


def load_components(
    ref: str | None,
    config: PredictorConfig,
    teacher=None,
    bank: RetrievalIndex | None = None,
    with_selector: bool = True,
) -> PredictorParts:
    """The teacher, torch backend, bank, info and selector of ``ref`` for a Predictor
    (``with_selector=False``: an unfitted selector, for refitting it)."""
    from celltext.inference.ranking import Ranker
    from celltext.inference.selector import AnswerSelector
    from celltext.teacher import load_teacher

    if ref == RETRIEVAL:
        teacher = teacher or load_teacher()
        bank = bank or load_bank(teacher, config, required=True)
        info = ModelInfo(
            RETRIEVAL, config.bank.release, ref=ref, teacher_id=teacher.id, dim=teacher.dim
        )
        return PredictorParts(teacher, None, info, AnswerSelector(), bank)

    from celltext.registry.checkpoint import load_checkpoint

    path = resolve_ref(ref)
    ckpt = load_checkpoint(path)
    system = ckpt.model.eval()
    for p in system.parameters():
        p.requires_grad_(False)
    info = model_info_from_checkpoint(ckpt, ref)
    registered = _registered(ref)
    if registered is not None:
        info.name, info.version = registered[0], str(registered[1])
    if teacher is not None and info.teacher_id and teacher.id != info.teacher_id:
        log.info("model %s needs teacher %s, not %s", info.label, info.teacher_id, teacher.id)
        teacher, bank = None, None
    teacher = teacher or load_teacher(info.teacher_id or "minilm")
    if bank is None and config.fallback.enabled:
        bank = load_bank(teacher, config, required=False)
    from celltext.inference.torch_backend import TorchBackend

    log.info("loaded model %s from %s", info.label, path)
    return PredictorParts(
        teacher=teacher,
        backend=TorchBackend(system, ckpt.tokenizer),
        info=info,
        selector=AnswerSelector.for_model(path) if with_selector else AnswerSelector(),
        bank=bank,
        ranker=Ranker.load(path),
    )


def _registered(ref: str | None) -> tuple[str, int] | None:
    """Registry name and version behind ``ref`` (None for paths and the default)."""
    if ref is None or Path(ref).exists():
        return None
    from celltext.inference import registry_client

    try:
        return registry_client.resolve(ref)
    except Exception:  # noqa: BLE001 -- the label is cosmetic; the load itself succeeded
        return None


def load_bank(
    teacher: Teacher | str, config: PredictorConfig, required: bool, build: bool = True
) -> RetrievalIndex | None:
    """The release's phrase bank; without a release the fallback uses a fixed answer.
    ``build=False``: only a cached bank (None otherwise; ``teacher`` may then be the
    teacher's id alone)."""
    release = config.bank.release
    try:
        return RetrievalIndex.for_release(
            teacher, release, config.bank.split, build=build, approximate=config.bank.approximate
        )
    except Exception as exc:  # noqa: BLE001 -- a missing release must not stop serving
        if required:
            raise
        log.warning("no phrase bank (release %s): %s; fallback answers are fixed", release, exc)
        return None
