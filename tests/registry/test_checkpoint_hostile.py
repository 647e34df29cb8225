"""Fault injection on checkpoints whose hashes were made to match (issue 14, items 6, 7, 10):
sizes are bounded before allocating, ``files`` entries stay inside the directory, and an
invalid tokenizer is refused by name."""

from __future__ import annotations

import json

import pytest

from celltext.hashing import sha256_file
from celltext.registry import checkpoint
from celltext.registry.checkpoint import (
    CheckpointIntegrityError,
    _self_hash,
    load_checkpoint,
    save_checkpoint,
    verify_checkpoint,
)


@pytest.fixture
def ckpt(model, tokenizer, tmp_path):
    return save_checkpoint(tmp_path / "ck", model, tokenizer, durable=False)


def _resign(path, **extra_files) -> None:
    """Recompute every hash in metadata.json, as anyone shipping the folder can."""
    meta = json.loads((path / "metadata.json").read_text())
    files = {**meta["files"], **extra_files}
    meta["files"] = {
        rel: (h if rel in extra_files else sha256_file(path / rel)) for rel, h in files.items()
    }
    meta["metadata_sha256"] = _self_hash(meta)
    (path / "metadata.json").write_text(json.dumps(meta))


def _edit_config(path, edit) -> None:
    config = json.loads((path / "config.json").read_text())
    edit(config["system"])
    (path / "config.json").write_text(json.dumps(config))
    _resign(path)


def _hybrid(system, **core) -> None:
    system["core"] = "hybrid_cct_mamba"
    system["core_config"] = {"lattice": {"size": [3, 3, 2], **core}}


def _set_dim(system, dim: int) -> None:
    system["dim"] = system["core_config"]["dim"] = system["decoder_config"]["dim"] = dim


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda s: _hybrid(s, size=[2000, 2000, 2000]), "8000000000 cells"),
        (lambda s: s["decoder_config"].update(vocab_size=400_000_000), "vocab_size = 400000000"),
        (lambda s: s["decoder_config"].update(d_model=10**7), "d_model = 10000000"),
        (lambda s: _set_dim(s, 100_000), "system.dim = 100000"),
        (lambda s: s["decoder_config"].update(d_model=60_000, n_heads=2), "parameters, over"),
    ],
)
def test_oversized_config_is_refused_before_allocating(ckpt, edit, needle):
    _edit_config(ckpt, edit)
    with pytest.raises(CheckpointIntegrityError, match="config.json: refused") as info:
        load_checkpoint(ckpt)
    assert needle in str(info.value)


def test_sane_sizes_still_load(ckpt):
    assert load_checkpoint(ckpt).model.dim == 16


def test_oversized_json_file_is_refused(ckpt, monkeypatch):
    monkeypatch.setattr(checkpoint, "MAX_JSON_BYTES", 100)
    with pytest.raises(CheckpointIntegrityError, match="metadata.json: .* over the limit"):
        verify_checkpoint(ckpt)


@pytest.mark.parametrize("entry", ["../../../etc/hostname", "/etc/hostname", "a/../../x"])
def test_files_entry_outside_the_checkpoint_is_refused(ckpt, entry):
    _resign(ckpt, **{entry: "0" * 64})
    with pytest.raises(CheckpointIntegrityError, match="refused: outside the checkpoint"):
        verify_checkpoint(ckpt)


def test_symlink_leaving_the_checkpoint_is_refused(ckpt, tmp_path):
    outside = tmp_path / "elsewhere.json"
    outside.write_bytes((ckpt / "tokenizer.json").read_bytes())
    (ckpt / "tokenizer.json").unlink()
    (ckpt / "tokenizer.json").symlink_to(outside)
    with pytest.raises(CheckpointIntegrityError, match="tokenizer.json: refused: a symlink"):
        load_checkpoint(ckpt)


def test_symlink_inside_the_checkpoint_is_allowed(ckpt):
    (ckpt / "notes").mkdir()
    (ckpt / "notes" / "link.json").symlink_to(ckpt / "config.json")
    _resign(ckpt, **{"notes/link.json": sha256_file(ckpt / "config.json")})
    verify_checkpoint(ckpt)


def test_invalid_tokenizer_with_matching_hash_names_the_file(ckpt):
    (ckpt / "tokenizer.json").write_text('{"version": "1.0"}')
    _resign(ckpt)
    with pytest.raises(CheckpointIntegrityError, match="tokenizer.json: not a valid tokenizer"):
        load_checkpoint(ckpt)
