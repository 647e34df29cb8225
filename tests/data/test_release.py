"""Release files: round trip, integrity verification, tampering refused."""

from __future__ import annotations

import gzip
import json

import pytest

from celltext.data.release import ReleaseIntegrityError, load_release, write_release
from celltext.data.review import apply_verdicts, export_sample, load_rejects, read_verdicts
from celltext.data.schema import QAPair


def test_round_trip_and_extra_texts(tmp_path, tiny_pairs):
    path = write_release(tiny_pairs, tmp_path / "v0", "v0", extra_texts=["One more sentence."])
    rel = load_release("v0", root=tmp_path)
    assert rel.version == "v0" and len(rel.sha256) == 64
    assert [p.id for p in rel.pairs("train")] == ["id0", "id1"]
    assert len(rel.pairs()) == 5 and rel.extra_texts() == ["One more sentence."]
    assert rel.manifest["per_split"]["test_unseen"] == 1
    assert load_release(str(path)).sha256 == rel.sha256
    with pytest.raises(ValueError, match="unknown split"):
        rel.pairs("dev")


def test_tampered_file_is_refused_naming_the_file(tmp_path, tiny_pairs):
    path = write_release(tiny_pairs, tmp_path / "v0", "v0")
    target = path / "train.jsonl.gz"
    records = gzip.decompress(target.read_bytes()).decode().replace("test object", "lie")
    target.write_bytes(gzip.compress(records.encode()))
    with pytest.raises(ReleaseIntegrityError, match=r"train\.jsonl\.gz: sha256 mismatch"):
        load_release("v0", root=tmp_path)


def test_missing_file_and_missing_release(tmp_path, tiny_pairs):
    path = write_release(tiny_pairs, tmp_path / "v0", "v0")
    (path / "val.jsonl.gz").unlink()
    with pytest.raises(ReleaseIntegrityError, match="missing"):
        load_release("v0", root=tmp_path)
    with pytest.raises(FileNotFoundError):
        load_release("v9", root=tmp_path)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(ReleaseIntegrityError, match="unreadable manifest"):
        load_release("v0", root=tmp_path)


def test_bad_pair_rejected_on_write(tmp_path, tiny_pairs):
    bad = QAPair(**{**tiny_pairs[0].to_dict(), "split": "dev"})
    with pytest.raises(ValueError, match="unknown split"):
        write_release([bad], tmp_path / "x", "x")
    with pytest.raises(ValueError, match="missing"):
        QAPair.from_dict({"id": "x"})


def test_review_export_and_apply(tmp_path, tiny_pairs):
    pairs = tiny_pairs
    csv_path = export_sample(pairs, tmp_path / "sample.csv")
    rows = read_verdicts(csv_path)
    assert [r["id"] for r in rows] == [p.id for p in pairs] and rows[0]["verdict"] == ""
    text = csv_path.read_text().splitlines()
    text[2] = text[2][: -len(",,")] + ",reject,wrong domain"
    csv_path.write_text("\n".join(text) + "\n")
    rejects = tmp_path / "rejects.txt"
    assert apply_verdicts(csv_path, rejects) == 1
    assert apply_verdicts(csv_path, rejects) == 0  # idempotent
    assert load_rejects(rejects).ids == {"id1"}
    jsonl = export_sample(pairs[:2], tmp_path / "sample.jsonl")
    assert json.loads(jsonl.read_text().splitlines()[0])["id"] == "id0"
