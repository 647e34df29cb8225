"""``celltext bench --onnx DIR``: onnxruntime against PyTorch in the bench report.

Reuses the tiny fitted checkpoint of conftest.py, exported without the parity run.
"""

from __future__ import annotations

import json

import pytest
from serving_tiny import tiny_release
from typer.testing import CliRunner

from celltext.cli import app


@pytest.fixture(scope="module")
def onnx_dir(fitted_ckpt, teacher, tmp_path_factory):
    from celltext.export.onnx import export_model
    from celltext.inference.factory import load_predictor

    out = tmp_path_factory.mktemp("bench_onnx") / "tiny"
    export_model(load_predictor(str(fitted_ckpt), fallback=False, teacher=teacher), out)
    return out


@pytest.fixture(scope="module")
def release_dir(tmp_path_factory):
    return tiny_release(tmp_path_factory.mktemp("bench_release"))


def _bench(*args: str):
    return CliRunner().invoke(app, ["bench", "--iters", "3", "--batch", "4", "--threads", "1",
                                    "--json", *args])  # fmt: skip


def test_bench_onnx_adds_the_comparison(fitted_ckpt, onnx_dir, release_dir):
    result = _bench("--model", str(fitted_ckpt), "--release", str(release_dir),
                    "--onnx", str(onnx_dir))  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    for key in ("latency_ms", "throughput_per_s", "memory", "machine", "params"):
        assert key in out  # the existing keys are still there
    assert "onnx" not in out["latency_ms"] and "end_to_end" in out["latency_ms"]
    onnx = out["onnx"]
    assert onnx["same_checkpoint"] is True and onnx["decoder_mode"] == "step"
    assert onnx["settings"]["iters"] == out["latency_ms"]["end_to_end"]["n"] == 3
    assert onnx["settings"]["fallback"] is True and onnx["settings"]["num_beams"] == 1
    # the same stages as the torch top level, on the onnxruntime backend
    assert set(onnx["latency_ms"]) == set(out["latency_ms"])
    for stage, lat in onnx["latency_ms"].items():
        assert lat["n"] >= 3 and lat["p95"] >= lat["p50"] > 0, stage
        assert onnx["throughput_per_s"][stage] > 0, stage
    assert onnx["throughput_per_s"]["batch_size"] == 4
    assert set(onnx["targets"]) <= set(out["targets"])
    assert onnx["ratio_end_to_end_to_retrieval"] == pytest.approx(
        onnx["latency_ms"]["end_to_end"]["p50"] / onnx["latency_ms"]["retrieval"]["p50"], abs=0.01
    )
    mem = onnx["memory"]
    for side in ("onnx", "pytorch"):
        assert mem[side]["peak_rss_mb"] > 0 and mem[side]["answered"] == 3, mem[side]
        assert 0 < mem[side]["load_s"] <= mem[side]["first_answer_s"]
    assert mem["onnx"]["torch_imported"] is False and mem["pytorch"]["torch_imported"] is True
    assert onnx["ratio_p50_onnx_to_pytorch"] > 0
    assert onnx["ratio_peak_rss_onnx_to_pytorch"] == pytest.approx(
        mem["onnx"]["peak_rss_mb"] / mem["pytorch"]["peak_rss_mb"], rel=1e-2
    )
    # beside every stage: its share of the end-to-end time and its floor, on both backends
    for side in (out, onnx):
        calls = {"teacher_pass", "index_search", "core_call", "decoder_call"}
        assert calls <= set(side["floors_ms"])
        assert all(s["p50"] > 0 for s in side["floors_ms"].values())
        assert set(side["stage_floor_ms"]) == {
            "teacher", "retrieval", "core", "decoder", "generative", "end_to_end"
        }  # fmt: skip
        assert side["share_of_end_to_end"]["end_to_end"] == 1.0
        assert set(side["share_of_end_to_end"]) == set(side["latency_ms"])


def test_bench_prints_each_stages_share_and_floor(fitted_ckpt, release_dir):
    result = CliRunner().invoke(app, ["bench", "--iters", "3", "--batch", "4", "--threads", "1",
                                      "--model", str(fitted_ckpt), "--release", str(release_dir),
                                      "--no-predictor"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "floor ms" in result.output and "share" in result.output


def test_bench_onnx_rejects_bad_arguments(fitted_ckpt, release_dir, tmp_path):
    result = _bench("--model", str(fitted_ckpt), "--release", str(release_dir),
                    "--onnx", str(tmp_path))  # fmt: skip
    assert result.exit_code != 0 and "not an ONNX export" in " ".join(result.output.split())
    result = _bench("--model", "retrieval", "--release", str(release_dir), "--onnx", str(tmp_path))
    assert result.exit_code != 0 and "retrieval" in result.output


def test_bench_help_documents_onnx():
    result = CliRunner().invoke(app, ["bench", "--help"])
    assert result.exit_code == 0 and "--onnx" in result.output
