"""The ablation: budget resolution, a one-core/one-decoder run end to end, the report."""

from __future__ import annotations

import json

import pytest

from celltext.config import ConfigError
from celltext.experiments import ablation
from celltext.experiments.ablation import AblationConfig
from celltext.models.zoo import families
from celltext.reports.markdown import md_table, read_section, update_section


def test_budget_resolution_and_validation():
    cfg = AblationConfig(budget="tiny", core_steps=7, max_train_pairs=0)
    b = cfg.resolved()
    assert b["core_steps"] == 7 and b["max_train_pairs"] == 0
    assert b["decoder_steps"] == ablation.BUDGETS["tiny"]["decoder_steps"]
    with pytest.raises(ConfigError, match="budget"):
        AblationConfig(budget="huge")
    with pytest.raises(ConfigError, match="base_decoder"):
        AblationConfig(decoders=("ret",), base_decoder="enhanced_cct")


def test_the_architectures_come_from_the_registry():
    cfg = AblationConfig(budget="tiny").with_architectures()
    assert cfg.cores == families("core") and cfg.decoders == families("decoder")
    assert "mlp" in cfg.cores and "ret" in cfg.decoders
    chosen = AblationConfig(cores=("mlp",), decoders=("ret",)).with_architectures()
    assert chosen.cores == ("mlp",) and chosen.decoders == ("ret",)
    with pytest.raises(ConfigError, match="not registered: lstm"):
        AblationConfig(cores=("mlp", "lstm")).with_architectures()
    with pytest.raises(ConfigError, match="base_decoder"):
        AblationConfig(base_decoder="phrase_bank").with_architectures()


def test_variant_preset_switches_architecture_and_stage():
    cfg = AblationConfig(preset="tiny", budget="tiny", release="vx")
    p = ablation.variant_preset(cfg, "lattice3d", "ret", "core")
    assert p.core.name == "lattice3d" and p.core.config == {}  # tiny's MLP config dropped
    assert p.decoder.config  # tiny's RET config kept (same decoder)
    assert p.enabled_stages() == ["core"]
    assert p.stages.core.train.max_steps == ablation.BUDGETS["tiny"]["core_steps"]
    assert p.data.release == "vx" and p.registry.register is False


def test_update_section_replaces_only_its_block(tmp_path):
    doc = tmp_path / "doc.md"
    update_section(doc, "a", "first A")
    update_section(doc, "b", "only B")
    update_section(doc, "a", "second A")
    text = doc.read_text()
    assert text.startswith("# Performance analysis")
    assert "first A" not in text and text.count("<!-- BEGIN a -->") == 1
    assert read_section(doc, "a") == "second A" and read_section(doc, "b") == "only B"
    assert md_table(["x", "y"], [["r", 1.23456], ["s", None]]).splitlines()[2] == "| r | 1.235 |"


def test_tiny_ablation_end_to_end(tmp_path, monkeypatch, hash_teacher, qa_pairs):
    """One core and one decoder, tiny budget, on a tiny release, with a stand-in teacher."""
    from celltext.data.release import write_release

    write_release(qa_pairs, tmp_path / "rel" / "vtest", "vtest")
    monkeypatch.setenv("CELLTEXT_RELEASES", str(tmp_path / "rel"))
    hash_teacher.id, hash_teacher.dim = "all-MiniLM-L6-v2", 384
    monkeypatch.setattr("celltext.teacher.load_teacher", lambda name="minilm": hash_teacher)
    cfg = AblationConfig(
        preset="tiny", release="vtest", budget="tiny", cores=("mlp",), decoders=("ret",),
        splits=("test_unseen",), threads=1, out=str(tmp_path / "out"),
        doc=str(tmp_path / "docs" / "PERF.md"), figures=str(tmp_path / "docs" / "figures"),
        mlflow=False, command="celltext ablate --budget tiny",
    )  # fmt: skip
    steps: list[str] = []
    report = ablation.run_ablation(cfg, steps.append)
    assert steps[0] == "train decoder/ret" and "write report" in steps
    dec = report["decoders"]["ret"]["splits"]["test_unseen"]["metrics"]
    assert {"bleu", "embedding_preservation", "coherence", "exact_match"} <= set(dec)
    core = report["cores"]["mlp"]
    assert core["train_time_s"] > 0 and core["info"]["params_core"] > 0
    assert "core_cosine" in core["splits"]["test_unseen"]["metrics"]
    saved = json.loads((tmp_path / "out" / "ablation.json").read_text())
    assert saved["cores"]["mlp"]["splits"] == core["splits"]
    text = (tmp_path / "docs" / "PERF.md").read_text()
    assert "Command: `celltext ablate --budget tiny`" in text
    assert "### Cores on `test_unseen`" in text and "retrieval (baseline)" in text
    for name in ("cores_quality_vs_params", "decoders_quality_vs_latency"):
        assert (tmp_path / "docs" / "figures" / f"ablation_{name}.png").stat().st_size > 1000


def test_mlflow_logging_one_run_per_variant():
    logged = []

    class Recorder:
        def __init__(self, experiment, run_name=None):
            self.run_id, self.metrics = run_name, {}
            logged.append(self)

        def log_params(self, params):
            self.params = params

        def log_metrics(self, metrics, step):
            self.metrics.update(metrics)

        def finish(self, status="FINISHED"):
            self.status = status

    split = {"metrics": {"bleu": 0.5}, "latency_ms": {"p50": 3.0}}
    res = {"info": {"core": "mlp"}, "train_time_s": 2.0, "splits": {"val": split}}
    run_id = ablation._log_one(Recorder, "exp", "core-mlp", res, {"seed": 0})
    assert run_id == "ablation-core-mlp"
    assert logged[0].metrics == {"val/bleu": 0.5, "val/latency_p50_ms": 3.0, "train/time_s": 2.0}
    assert logged[0].status == "FINISHED" and logged[0].params["core"] == "mlp"
