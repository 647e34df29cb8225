"""``celltext data ...`` through the real typer app."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from celltext.cli import app
from celltext.data.release import write_release
from celltext.paths import releases_dir

runner = CliRunner()


def test_stats_json_shape_on_committed_v1():
    result = runner.invoke(app, ["data", "stats", "--release", "v1", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) == {"version", "sha256", "total", "subjects", "per_domain", "per_split"}
    assert out["version"] == "v1" and len(out["sha256"]) == 64
    assert out["total"] >= 30000 and out["subjects"] >= 10000
    assert all(n >= 500 for n in out["per_domain"].values()), out["per_domain"]
    assert len(out["per_domain"]) == 9
    assert out["per_split"]["test_paraphrase"] >= 1000 and out["per_split"]["test_unseen"] >= 1000
    assert sum(out["per_split"].values()) == out["total"]
    size = sum(f.stat().st_size for f in (releases_dir() / "v1").iterdir())
    assert size < 15 * 1024 * 1024


def test_stats_refuses_tampered_release(tmp_path, tiny_pairs):
    path = write_release(tiny_pairs, tmp_path / "v0", "v0")
    ok = runner.invoke(app, ["data", "stats", "--release", str(path), "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["total"] == 5
    with open(path / "val.jsonl.gz", "ab") as fh:
        fh.write(b"\x00")
    bad = runner.invoke(app, ["data", "stats", "--release", str(path), "--json"])
    assert bad.exit_code != 0
    text = " ".join(bad.output.split())
    assert "val.jsonl.gz" in text and "sha256 mismatch" in text


def test_stats_refuses_manifest_with_wrong_counts(tmp_path, tiny_pairs):
    path = write_release(tiny_pairs, tmp_path / "v0", "v0")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["total"] = 99999
    (path / "manifest.json").write_text(json.dumps(manifest))
    bad = runner.invoke(app, ["data", "stats", "--release", str(path)])
    assert bad.exit_code != 0 and "does not match" in " ".join(bad.output.split())


def test_review_and_report_commands(tmp_path, tiny_pairs):
    path = write_release(tiny_pairs, tmp_path / "v0", "v0")
    out = tmp_path / "review.csv"
    res = runner.invoke(
        app, ["data", "review", "--release", str(path), "--n", "3", "--out", str(out), "--json"]
    )
    assert res.exit_code == 0, res.output
    assert len(out.read_text().splitlines()) == 4
    res = runner.invoke(
        app, ["data", "review", "--apply", str(out), "--rejects", str(tmp_path / "r.txt"), "--json"]
    )
    assert res.exit_code == 0 and json.loads(res.stdout)["rejected_added"] == 0
    figs = tmp_path / "figs"
    res = runner.invoke(
        app, ["data", "report", "--release", str(path), "--out-dir", str(figs), "--json"]
    )
    assert res.exit_code == 0, res.output
    assert {p.name for p in figs.iterdir()} == {"data_domains.png", "data_answer_length.png"}
    shutil.rmtree(figs)


def test_build_command_with_a_config_file(
    tmp_path, monkeypatch, glossary_dir, shared_dictd_dir, fake_teacher
):
    import celltext.teacher

    monkeypatch.setattr(celltext.teacher, "load_teacher", lambda name="minilm": fake_teacher)
    cfg = tmp_path / "build.yaml"
    cfg.write_text(
        "sources: [glossary, elements]\n"
        f"dictd_dir: {shared_dictd_dir}\nglossary_dir: {glossary_dir}\n"
        f"rejects_file: {tmp_path / 'none.txt'}\ncoherence_floor: -1.0\n"
    )
    out = tmp_path / "rel"
    args = ["data", "build", "--version", "vcli", "--config", str(cfg), "--out", str(out)]
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    assert body["version"] == "vcli" and body["total"] > 0 and body["path"] == str(out)
    assert body["build_report"]["skipped_source_entries"]["elements:malformed_entry"]["count"] == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("no_such_field: 1\n")
    res = runner.invoke(app, ["data", "build", "--config", str(bad)])
    assert res.exit_code != 0 and "no_such_field" in " ".join(res.output.split())


def test_review_never_overwrites_verdicts_without_force(tmp_path, tiny_pairs):
    path = write_release(tiny_pairs, tmp_path / "v0", "v0")
    out = tmp_path / "review.csv"
    args = ["data", "review", "--release", str(path), "--n", "3", "--out", str(out), "--json"]
    assert runner.invoke(app, args).exit_code == 0
    assert runner.invoke(app, args).exit_code == 0  # no verdicts yet: re-exporting is fine
    reviewed = out.read_text().replace(",,\n", ",reject,wrong\n", 1)
    out.write_text(reviewed)
    res = runner.invoke(app, args)
    assert res.exit_code == 1 and "holds 1 verdicts" in " ".join(res.output.split())
    assert out.read_text() == reviewed
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0
    assert "reject" not in out.read_text()


def test_build_refuses_to_replace_a_release(tmp_path, tiny_pairs):
    out = write_release(tiny_pairs, tmp_path / "v0", "v0")
    before = (out / "manifest.json").read_text()
    res = runner.invoke(app, ["data", "build", "--version", "v0", "--out", str(out)])
    assert res.exit_code == 1 and "already holds a release" in " ".join(res.output.split())
    assert (out / "manifest.json").read_text() == before
    res = runner.invoke(app, ["data", "build", "--version", "v1"])  # the committed release
    assert res.exit_code == 1 and "--force" in res.output


def test_build_config_paths_are_relative_to_the_repository():
    from celltext.data.build import BuildConfig

    cfg = BuildConfig()
    assert not cfg.rejects_file.startswith("/")
    manifest = json.loads((releases_dir() / "v1" / "manifest.json").read_text())
    assert manifest["generator"]["config"]["rejects_file"] == cfg.rejects_file
    assert BuildConfig.from_dict(manifest["generator"]["config"]) == cfg
    assert manifest["generator"]["config_hash"] == cfg.config_hash()


def test_build_takes_the_releases_own_config(tmp_path, monkeypatch):
    """``celltext data build --version v2`` builds with configs/releases/v2.yaml (the v2
    glossary and templates), not v1's defaults under another name."""
    import celltext.data.build as build

    seen = {}

    def fake_build(cfg, out, progress=None):
        seen["cfg"] = cfg
        raise build.SourceMissingError("stop here")

    monkeypatch.setattr(build, "build_release", fake_build)
    args = ["data", "build", "--version", "v2", "--out", str(tmp_path / "v2"), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "stop here" in result.output, result.output
    cfg = seen["cfg"]
    assert cfg.version == "v2" and cfg.template_set == "v2" and cfg.glossary_subdirs == ("v2",)
    assert build.BuildConfig.for_version("v1").config_hash() == build.BuildConfig().config_hash()
