"""Shared fixtures of the export tests: one tiny export per module, and a copy per test."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="module")
def export_dir(fitted_ckpt, teacher, bank, tmp_path_factory):
    """The fitted tiny model exported once per test module."""
    from celltext.export.onnx import export_model
    from celltext.inference.factory import load_predictor

    out = tmp_path_factory.mktemp("export") / "tiny"
    export_model(load_predictor(str(fitted_ckpt), teacher=teacher, bank=bank), out)
    return out


@pytest.fixture
def copy(export_dir, tmp_path):
    """A copy of the export the test may damage."""
    dst = tmp_path / "export"
    shutil.copytree(export_dir, dst)
    return dst
