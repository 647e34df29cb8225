"""benchmarks/shipped_report.py prints its sections (written by celltext.reports.shipped) and
writes files only with --write."""

from __future__ import annotations

import importlib.util
import json

import pytest

from celltext.paths import REPO_ROOT
from celltext.reports.markdown import read_section


@pytest.fixture()
def report(monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "shipped_report", REPO_ROOT / "benchmarks" / "shipped_report.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def fake_eval(request, release):
        metrics = {"semantic_similarity": 0.9, "bleu": 0.5, "coherence": 0.7,
                   "embedding_preservation": 0.8}  # fmt: skip
        return {"system": {"kind": "fake"}, "release": {"version": "v1"}, "metrics": metrics,
                "counts": {"n": 3}, "latency_ms": {"p50": 1.0},
                "task": request.task}  # fmt: skip

    bench = {"machine": {"cpu_count": 2, "cpu": "fake", "torch": "2"}, "iters": 5,
             "throughput_per_s": {"batch_size": 8, "end_to_end": 10.0},
             "latency_ms": {"end_to_end": {"p50": 93.0, "p95": 120.0}}}  # fmt: skip
    monkeypatch.setattr(module, "run_eval", fake_eval)
    monkeypatch.setattr(module, "run_bench", lambda *a, **kw: bench)
    monkeypatch.setattr("celltext.data.release.load_release", lambda version: object())
    return module


def _args(tmp_path):
    return ["--out", str(tmp_path / "results"), "--doc", str(tmp_path / "PERF.md"),
            "--readme", str(tmp_path / "README.md")]  # fmt: skip


def test_without_write_it_only_prints(report, tmp_path, capsys):
    assert report.main(_args(tmp_path)) == 0
    assert list(tmp_path.iterdir()) == []
    out = capsys.readouterr()
    assert "## The shipped model" in out.out and "end_to_end 93.0 ms" in out.out
    assert "nothing written" in out.err


def test_write_updates_the_json_the_section_and_the_readme(report, tmp_path, capsys):
    (tmp_path / "README.md").write_text("# x\n<!-- BEGIN results -->\nold\n<!-- END results -->\n")
    assert report.main([*_args(tmp_path), "--write"]) == 0
    assert json.loads((tmp_path / "results" / "bench.json").read_text())["iters"] == 5
    assert (tmp_path / "results" / "eval_test_unseen_decoder_only.json").is_file()
    assert "## The shipped model" in read_section(tmp_path / "PERF.md", "shipped")
    assert "end_to_end 93.0 ms" in read_section(tmp_path / "README.md", "results")
    assert len(json.loads(capsys.readouterr().out)["written"]) == 3


def test_commands_name_every_option_of_their_request(report):
    runs = report.eval_requests("models/x", 4, 100)
    assert report.command_line(runs["eval_test_unseen_decoder_only"]) == (
        "celltext eval --model models/x --split test_unseen --no-fallback --decoder-only "
        "--rerank 4 --json"
    )
    retrieval = runs["eval_test_paraphrase_retrieval"]
    assert report.command_line(retrieval) == (
        "celltext eval --model retrieval --split test_paraphrase --json"
    )
    assert all(r.limit == 100 for r in runs.values())
