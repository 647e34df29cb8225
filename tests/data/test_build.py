"""A tiny end-to-end build on fixture sources with a fake teacher: splits, templates,
reject list, build report, deterministic output."""

from __future__ import annotations

import pytest

from celltext.data import splits, templates
from celltext.data.build import BuildConfig, SourceMissingError, build_release, fact_key
from celltext.data.release import load_release
from celltext.data.schema import DOMAINS, SPLITS


def _cfg(dictd_dir, glossary_dir, tmp_path, **kw):
    base = dict(
        version="vtest",
        sources=("glossary", "foldoc", "elements", "jargon", "vera"),
        dictd_dir=str(dictd_dir),
        glossary_dir=str(glossary_dir),
        rejects_file=str(tmp_path / "rejects.txt"),
        coherence_floor=-1.0,
        unseen_fraction=0.3,
        val_fraction=0.1,
        paraphrase_fraction=0.45,
    )
    return BuildConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def built(shared_dictd_dir, glossary_dir, tmp_path_factory, fake_teacher):
    tmp = tmp_path_factory.mktemp("built")
    cfg = _cfg(shared_dictd_dir, glossary_dir, tmp)
    return build_release(cfg, tmp / "rel", teacher=fake_teacher)


def test_build_writes_a_verified_release(built):
    rel = load_release(str(built.path))
    assert rel.version == "vtest" and len(rel.pairs()) == len(built.pairs) > 10
    assert set(rel.manifest["per_split"]) == set(SPLITS)
    assert set(rel.manifest["per_domain"]) == set(DOMAINS)
    assert rel.manifest["generator"]["config_hash"] == _hash_of(rel.manifest)
    assert {s["name"] for s in rel.manifest["sources"]} >= {"foldoc", "glossary", "vera"}
    annotations = rel.annotations()
    assert set(annotations) == {p.id for p in rel.pairs()}


def _hash_of(manifest):
    return BuildConfig.from_dict(manifest["generator"]["config"]).config_hash()


def test_build_report_counts_malformed_entries(built):
    report = built.report
    skipped = report["skipped_source_entries"]
    assert skipped["foldoc:malformed_index_line"]["count"] == 1
    assert skipped["elements:malformed_entry"]["count"] == 1
    assert skipped["glossary:malformed_entry"]["count"] == 1
    assert report["skipped_source_entries_total"] >= 4


def test_no_unseen_subject_in_train_and_reserved_templates_never_in_train(built):
    by_split = {s: [p for p in built.pairs if p.split == s] for s in SPLITS}
    assert by_split["test_unseen"] and by_split["test_paraphrase"]
    train_subjects = {splits.subject_key(p.subject) for p in by_split["train"] + by_split["val"]}
    assert not train_subjects & {splits.subject_key(p.subject) for p in by_split["test_unseen"]}
    for p in by_split["train"] + by_split["val"] + by_split["test_unseen"]:
        assert p.template_id not in templates.RESERVED_IDS
    for p in by_split["test_paraphrase"]:
        assert p.template_id in templates.RESERVED_IDS
        assert splits.subject_key(p.subject) in train_subjects


def test_split_assignment_is_deterministic(
    shared_dictd_dir, glossary_dir, tmp_path, fake_teacher, built
):
    cfg = _cfg(shared_dictd_dir, glossary_dir, tmp_path)
    a = built
    b = build_release(cfg, tmp_path / "b", teacher=fake_teacher)
    assert [(p.id, p.split, p.question) for p in a.pairs] == [
        (p.id, p.split, p.question) for p in b.pairs
    ]
    files = a.path.glob("*.jsonl.gz")
    for f in files:
        assert f.read_bytes() == (b.path / f.name).read_bytes()
    assert splits.base_split("quicksort", "abc", 0.5, 0.1, "s") == splits.base_split(
        "Quicksort ", "abc", 0.5, 0.1, "s"
    )


def test_reject_list_is_honoured(shared_dictd_dir, glossary_dir, tmp_path, fake_teacher, built):
    victim = next(p for p in built.pairs if p.subject == "quicksort")
    other = next(p for p in built.pairs if p.subject == "replay buffer")
    rejects = tmp_path / "rejects.txt"
    rejects.write_text(f"# reviewed\n{victim.id}  # wrong\nsubject: Replay Buffer\n")
    cfg = _cfg(shared_dictd_dir, glossary_dir, tmp_path, rejects_file=str(rejects))
    again = build_release(cfg, tmp_path / "r", teacher=fake_teacher)
    ids = {p.id for p in again.pairs}
    assert victim.id not in ids and not any(p.subject == other.subject for p in again.pairs)
    assert again.report["dropped_facts"]["review_rejected"] >= 2
    assert again.report["reject_list_entries"] == 2


def test_missing_source_is_a_clear_error(tmp_path, glossary_dir, fake_teacher):
    cfg = _cfg(tmp_path / "nowhere", glossary_dir, tmp_path)
    with pytest.raises(SourceMissingError, match="install_sources.sh"):
        build_release(cfg, tmp_path / "x", teacher=fake_teacher)


@pytest.mark.parametrize("template_set", templates.TEMPLATE_SET_NAMES)
def test_every_template_family_has_reserved_and_normal_templates(template_set):
    for (qtype, style), items in templates.TEMPLATE_SETS[template_set].items():
        assert any(t.reserved for t in items), (qtype, style)
        assert any(not t.reserved for t in items), (qtype, style)
    tpl = templates.choose("definition", "noun", "key", template_set=template_set)
    assert "algorithm" in tpl.render({"x": "algorithm", "xa": "an algorithm"})
    with pytest.raises(KeyError):
        templates.choose("definition", "no-such-style", "key", template_set=template_set)


def test_fact_key_is_stable(built):
    assert fact_key.__doc__ and len(built.pairs[0].id.split("-")[0]) == 16


@pytest.mark.parametrize("noise", [1e-9, -1e-9])
def test_float_noise_leaves_the_release_byte_identical(
    shared_dictd_dir, glossary_dir, tmp_path, fake_teacher, built, monkeypatch, noise
):
    """Another CPU computes the cosines with other rounding errors: the quantised scores,
    the decisions made on them and so every file and the release sha256 stay the same."""
    from celltext.data import quality

    exact = quality.coherence
    monkeypatch.setattr(quality, "coherence", lambda a, b: exact(a, b) + noise)
    noisy = build_release(
        _cfg(shared_dictd_dir, glossary_dir, tmp_path), tmp_path / "noisy", teacher=fake_teacher
    )
    assert load_release(str(noisy.path)).sha256 == load_release(str(built.path)).sha256
    for f in built.path.glob("*.jsonl.gz"):
        assert f.read_bytes() == (noisy.path / f.name).read_bytes(), f.name
    scores = [a["coherence"] for a in load_release(str(noisy.path)).annotations().values()]
    assert any(s is not None for s in scores)
    assert all(s is None or s == round(s, quality.SCORE_DECIMALS) for s in scores)


V2_GLOSSARY = """\
domain: computer_vision
entries:
  - term: feature maps
    noun: plural
    def: the outputs of a convolutional layer, one map per channel.
    kind: tensor
    use: to locate features in an image
  - term: torchvision
    noun: proper
    def: a PyTorch package of vision datasets, models and image transformations.
    kind: software library
    example: Training an image classifier often starts from a torchvision model.
  - term: curse of dimensionality
    noun: definite
    def: the collection of problems that arise when data have very many dimensions.
    kind: phenomenon
  - term: replay buffer
    noun: count
    def: a repeat of the top-level term, reported and skipped.
"""


@pytest.fixture(scope="module")
def built_v2(shared_dictd_dir, glossary_dir, tmp_path_factory, fake_teacher):
    """A tiny build with the release-v2 options: glossary sub-folder and template set v2."""
    tmp = tmp_path_factory.mktemp("built_v2")
    (tmp / "glossary" / "v2").mkdir(parents=True)
    (tmp / "glossary" / "rl.yaml").write_text((glossary_dir / "rl.yaml").read_text())
    (tmp / "glossary" / "v2" / "cv.yaml").write_text(V2_GLOSSARY)
    cfg = _cfg(
        shared_dictd_dir,
        tmp / "glossary",
        tmp,
        version="v2test",
        glossary_subdirs=("v2",),
        template_set="v2",
        paraphrase_fraction=0.45,
    )
    return build_release(cfg, tmp / "rel", teacher=fake_teacher)


def test_v2_options_build_a_release(built_v2):
    rel = load_release(str(built_v2.path))
    generator = rel.manifest["generator"]
    assert generator["config"]["template_set"] == "v2"
    assert generator["config"]["glossary_subdirs"] == ["v2"]
    assert generator["config_hash"] == _hash_of(rel.manifest)
    assert generator["templates"] == sorted(templates.by_id("v2"))
    assert set(generator["reserved_templates"]) >= templates.RESERVED_IDS
    assert built_v2.report["skipped_source_entries"]["glossary:duplicate_term"]["count"] == 1
    by_subject = {(p.qtype, p.subject): p for p in built_v2.pairs if p.split != "test_paraphrase"}
    plural = by_subject[("definition", "feature maps")]
    assert plural.answer.startswith("Feature maps are") and plural.template_id.startswith(
        "definition_plural_"
    )
    assert "Torchvision" not in " ".join(p.question + p.answer for p in built_v2.pairs)
    assert by_subject[("definition", "curse of dimensionality")].answer.startswith("The curse")
    reserved = templates.reserved_ids("v2")
    for p in built_v2.pairs:
        assert (p.template_id in reserved) == (p.split == "test_paraphrase"), p
        assert p.template_id in templates.by_id("v2")


def test_v2_template_set_reaches_casual_templates(built_v2):
    """Over many facts the v2 set asks some questions the way people type them."""
    casual = [p for p in built_v2.pairs if templates.by_id("v2")[p.template_id].casual]
    assert casual and any(not p.question.endswith("?") for p in casual)
