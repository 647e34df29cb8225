"""Both runtimes implement :class:`~celltext.inference.backend.Backend`: the same members,
the same method signatures, capabilities declared (never probed), typed loader parts."""

from __future__ import annotations

import inspect

import pytest

from celltext.inference.backend import Backend, Capabilities, PredictorParts, Teacher
from celltext.inference.onnx_backend import OrtBackend
from celltext.inference.torch_backend import TorchBackend

METHODS = ("core", "stepper", "generate", "activity")


@pytest.mark.parametrize("cls", [TorchBackend, OrtBackend])
def test_backend_methods_have_the_protocols_signatures(cls):
    for name in METHODS:
        want = inspect.signature(getattr(Backend, name))
        got = inspect.signature(getattr(cls, name))
        assert list(got.parameters) == list(want.parameters), (cls.__name__, name)
    assert cls.generate is Backend.generate  # the one decoding loop, written once


def test_the_torch_backend_is_a_backend(predictor, lattice_ckpt, teacher, bank):
    from celltext.inference.factory import load_predictor

    assert isinstance(predictor.backend, Backend) and isinstance(predictor.teacher, Teacher)
    assert predictor.backend.capabilities == Capabilities(edits=False, activity=False)
    lattice = load_predictor(str(lattice_ckpt), teacher=teacher, bank=bank)
    assert lattice.backend.capabilities.activity


def test_the_onnxruntime_backend_is_a_backend(predictor, tmp_path, bank):
    from celltext.export.onnx import export_model
    from celltext.inference.onnx_backend import load_export

    export_model(predictor, tmp_path / "export")
    parts = load_export(tmp_path / "export")
    assert isinstance(parts, PredictorParts)
    assert isinstance(parts.backend, Backend) and isinstance(parts.teacher, Teacher)
    assert parts.backend.capabilities == predictor.backend.capabilities
    assert parts.teacher.id == predictor.teacher.id and parts.config is not None


def test_a_class_without_the_members_is_not_a_backend():
    class Half:
        name, dim, tokenizer = "half", 4, None

        def core(self, q_embs): ...

    assert not isinstance(Half(), Backend)
