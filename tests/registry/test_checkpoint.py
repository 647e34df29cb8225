"""Checkpoint format: round trip, fp16 export, integrity checks, atomic writes."""

from __future__ import annotations

import json

import pytest
import torch
from registry_helpers import make_model

from celltext.registry.checkpoint import (
    CheckpointIntegrityError,
    atomic_directory,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
    verify_checkpoint,
)
from celltext.registry.tensorio import load_tensors, save_tensors


def _outputs(model, tokenizer):
    torch.manual_seed(1)
    emb = torch.nn.functional.normalize(torch.randn(3, model.dim), dim=-1)
    ids = torch.tensor([[tokenizer.bos_id] + tokenizer.encode("A tokenizer splits text.")] * 3)
    with torch.no_grad():
        return model.core(emb), model.decoder(emb, ids)


def test_round_trip_strict_eval_and_metadata(model, tokenizer, tmp_path):
    path = save_checkpoint(
        tmp_path / "ck",
        model,
        tokenizer,
        {"preset": {"name": "t"}},
        {"metrics": {"val/cosine": 0.5}, "dataset": {"version": "x"}},
    )
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json",
        "metadata.json",
        "model.safetensors",
        "tokenizer.json",
    ]
    ck = load_checkpoint(path)
    assert not ck.model.training
    model.eval()
    for a, b in zip(_outputs(model, tokenizer), _outputs(ck.model, tokenizer), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    meta = ck.metadata
    assert meta["metrics"] == {"val/cosine": 0.5}
    assert meta["architecture"]["core"] == "mlp_v1" and meta["architecture"]["decoder"] == "ret_v1"
    assert meta["parameters"]["total"] == meta["parameters"]["core"] + meta["parameters"]["decoder"]
    for key in ("git", "hardware", "libraries", "config_hash", "created", "files"):
        assert key in meta
    assert set(meta["files"]) == {"config.json", "model.safetensors", "tokenizer.json"}
    tensors, _ = load_tensors(path / "model.safetensors")
    assert all(k.startswith(("core.", "decoder.")) for k in tensors)
    assert ck.config["preset"] == {"name": "t"}
    assert ck.tokenizer.to_str() == tokenizer.to_str()


def test_weights_file_is_deterministic(model, tokenizer, tmp_path):
    a = save_checkpoint(tmp_path / "a", model, tokenizer)
    b = save_checkpoint(tmp_path / "b", model, tokenizer)
    assert read_metadata(a)["weights_sha256"] == read_metadata(b)["weights_sha256"]


def test_fp16_export_is_smaller_and_loads_as_fp32(model, tokenizer, tmp_path):
    full = save_checkpoint(tmp_path / "f32", model, tokenizer)
    half = save_checkpoint(tmp_path / "f16", model, tokenizer, dtype=torch.float16)
    size = (half / "model.safetensors").stat().st_size
    assert size < 0.6 * (full / "model.safetensors").stat().st_size
    ck = load_checkpoint(half)
    assert ck.metadata["weights_dtype"] == "float16"
    assert all(p.dtype == torch.float32 for p in ck.model.parameters())
    model.eval()
    for a, b in zip(_outputs(model, tokenizer), _outputs(ck.model, tokenizer), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("target", ["model.safetensors", "tokenizer.json", "config.json"])
def test_tampered_file_is_refused_naming_it(model, tokenizer, tmp_path, target):
    path = save_checkpoint(tmp_path / "ck", model, tokenizer)
    data = bytearray((path / target).read_bytes())
    data[len(data) // 2] ^= 0x01
    (path / target).write_bytes(bytes(data))
    with pytest.raises(CheckpointIntegrityError, match=target.replace(".", r"\.")):
        load_checkpoint(path)


def test_truncated_and_missing_files_are_refused(model, tokenizer, tmp_path):
    path = save_checkpoint(tmp_path / "ck", model, tokenizer)
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointIntegrityError, match="model.safetensors.*truncated"):
        verify_checkpoint(path)
    weights.unlink()
    with pytest.raises(CheckpointIntegrityError, match="model.safetensors: missing"):
        load_checkpoint(path)


def test_edited_metadata_is_refused(model, tokenizer, tmp_path):
    path = save_checkpoint(tmp_path / "ck", model, tokenizer, metadata={"metrics": {"a": 1.0}})
    meta = json.loads((path / "metadata.json").read_text())
    meta["metrics"]["a"] = 2.0
    (path / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointIntegrityError, match="metadata.json"):
        load_checkpoint(path)
    (path / "metadata.json").write_text("{ truncated")
    with pytest.raises(CheckpointIntegrityError, match="metadata.json: unreadable"):
        load_checkpoint(path)


def test_config_mismatch_is_refused(tokenizer, tmp_path):
    path = save_checkpoint(tmp_path / "ck", make_model(tokenizer), tokenizer)
    other = make_model(tokenizer, d_model=64)
    weights, _ = load_tensors(path / "model.safetensors")
    with pytest.raises(RuntimeError):
        other.load_state_dict(weights, strict=True)


def test_atomic_write_keeps_old_checkpoint_on_failure(model, tokenizer, tmp_path):
    path = save_checkpoint(tmp_path / "ck", model, tokenizer, metadata={"metrics": {"v": 1.0}})

    def broken(directory):
        (directory / "partial.bin").write_bytes(b"x")
        raise OSError("disk full")

    with pytest.raises(OSError):
        save_checkpoint(path, model, tokenizer, train_state=broken)
    assert read_metadata(path)["metrics"] == {"v": 1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]  # no temporary left behind
    with atomic_directory(tmp_path / "new") as tmp:
        assert not (tmp_path / "new").exists()
        (tmp / "f").write_text("ok")
    assert (tmp_path / "new" / "f").read_text() == "ok"


def test_shared_tensors_are_stored_once(tmp_path):
    w = torch.randn(4, 3)
    save_tensors(tmp_path / "t.safetensors", {"a.weight": w, "b.weight": w, "c": torch.ones(2)})
    back, _ = load_tensors(tmp_path / "t.safetensors")
    assert set(back) == {"a.weight", "b.weight", "c"}
    assert torch.equal(back["a.weight"], w) and back["a.weight"] is back["b.weight"]
