"""The manifest of an ONNX export: sha256 of every file, verified before anything is loaded.

``manifest.json`` (written by :func:`celltext.export.publish.write_manifest`) lists the
sha256 of every file of the export and carries a hash of itself (``manifest_sha256``), as a
checkpoint's ``metadata.json`` does. :func:`verify_export` recomputes them all and raises
:class:`ExportIntegrityError` naming the first file that is missing, not listed, outside the
folder, or modified — a swapped vocabulary or a flipped byte in ``core.onnx`` is refused
instead of answering garbage. Like a checkpoint's hashes these are self-attested: they catch
damage and tampering of a trusted export, not a hostile one (``docs/THREAT_MODEL.md``).

No torch here: this is on the torch-free onnxruntime path.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from celltext.hashing import verify_file_hashes

MANIFEST = "manifest.json"
SELF_HASH = "manifest_sha256"
TEACHER_PRECISIONS = ("int8", "float32")
SERVED_TEACHER = "int8"
"""The teacher precision of the export that serving builds and uses (``build_export``,
``make demo``, ``celltext ask/serve`` of a checkpoint): int8 weights
(:mod:`celltext.teacher.int8`), its own phrase bank and its own selector
(``selector_int8.json`` beside the checkpoint). ``celltext export onnx --teacher float32``
writes the float32 one, which answers as PyTorch does."""
SELECTOR_FILES = {"float32": "selector.json", "int8": "selector_int8.json"}
"""The checkpoint's selector fitted for each teacher precision."""

FORMAT_VERSION = 4
"""Layout of an export's manifest; 2: the ``predictor`` block is the nested
:class:`~celltext.inference.options.PredictorConfig` (1 had flat fields); 3: the decoder's
``decoder_verify.onnx`` (a block of tokens at once, for speculative decoding); 4:
``decoder_prefill_block.onnx`` (the prefix and a first draft in one call)."""


class ExportIntegrityError(RuntimeError):
    """A file of an ONNX export is missing, unlisted, tampered with, truncated or invalid."""

    def __init__(self, path: Path, file: str, problem: str):
        self.path = Path(path)
        self.file = file
        super().__init__(f"ONNX export {self.path}: {file}: {problem}")


def manifest_hash(manifest: dict[str, Any]) -> str:
    """sha256 of the manifest's canonical JSON without its own hash."""
    body = {k: v for k, v in manifest.items() if k != SELF_HASH}
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def required_files(manifest: dict[str, Any]) -> list[str]:
    """The files the onnxruntime path opens for this manifest."""
    decoder = ["decoder_prefill.onnx", "decoder_step.onnx"]
    if manifest.get("decoder", {}).get("edits"):
        decoder.append("decoder_prefill_edit.onnx")
    if manifest.get("decoder", {}).get("verify"):
        decoder.append("decoder_verify.onnx")
    if manifest.get("decoder", {}).get("prefill_block"):
        decoder.append("decoder_prefill_block.onnx")
    core = ["core.onnx"] + (
        ["core_activity.onnx"] if manifest.get("core", {}).get("activity") else []
    )
    teacher = ["teacher.onnx", "teacher_tokenizer.json"]
    if manifest.get("teacher", {}).get("external_data"):
        teacher.append(str(manifest["teacher"]["external_data"]))
    ranker = ["ranker.npz", "ranker.json"] if manifest.get("ranker") else []
    return [*teacher, *core, "tokenizer.json", *decoder, *ranker]


def _inside(folder: Path, name: str) -> bool:
    """Whether ``folder/name`` is a plain name that resolves inside ``folder`` (no ``..``,
    no sub-path, no symlink that leaves it)."""
    if Path(name).name != name or name in ("", ".", ".."):
        return False
    root = folder.resolve()
    return (folder / name).resolve().parent == root


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """``manifest.json`` of an export, checked against its own hash when it carries one."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ExportIntegrityError(folder, MANIFEST, "missing (not an ONNX export?)") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportIntegrityError(folder, MANIFEST, f"unreadable ({exc})") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ExportIntegrityError(folder, MANIFEST, "no 'files' table of sha256 hashes")
    if SELF_HASH in manifest and manifest[SELF_HASH] != manifest_hash(manifest):
        raise ExportIntegrityError(folder, MANIFEST, "sha256 mismatch (file was modified)")
    return manifest


def verify_export(folder: str | Path) -> dict[str, Any]:
    """Check every file of an export against ``manifest.json``; return the manifest."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    files: dict[str, Any] = manifest["files"]
    for name in required_files(manifest):
        if name not in files:
            raise ExportIntegrityError(folder, name, "not listed in manifest.json")
    for name in sorted(files):
        if not _inside(folder, name):
            raise ExportIntegrityError(folder, name, "refused: not a file inside the export")
    verify_file_hashes(folder, files, ExportIntegrityError)
    return manifest
