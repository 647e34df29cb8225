"""Damaged releases whose hashes match (issue 14, item 10): one clear error naming the file
and the line, a non-zero exit, and under ``--json`` a JSON error document."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from celltext.cli import app
from celltext.data.release import (
    MANIFEST,
    ReleaseIntegrityError,
    dataset_digest,
    load_release,
    sha256_file,
    write_release,
)


def resign(path: Path) -> None:
    """Recompute the manifest's hashes (the release's owner re-signing a damaged file)."""
    manifest = json.loads((path / MANIFEST).read_text())
    for name, meta in manifest["files"].items():
        meta["sha256"] = sha256_file(path / name)
    manifest["sha256"] = dataset_digest(manifest["files"])
    (path / MANIFEST).write_text(json.dumps(manifest))


def damage_line(path: Path, split: str = "train", lineno: int = 2) -> None:
    target = path / f"{split}.jsonl.gz"
    lines = gzip.decompress(target.read_bytes()).decode().splitlines()
    line = lines[lineno - 1]
    at = line.index('": "') + 4  # a raw control character inside the first string value
    lines[lineno - 1] = line[:at] + "\x01" + line[at:]
    target.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    resign(path)


@pytest.fixture
def release(tmp_path, tiny_pairs):
    return write_release(tiny_pairs, tmp_path / "v0", "v0")


def test_malformed_line_names_the_file_and_the_line(release):
    damage_line(release)
    with pytest.raises(ReleaseIntegrityError, match=r"train\.jsonl\.gz:2: not valid JSON"):
        load_release(str(release)).pairs("train")


def test_bad_record_names_the_file_and_the_line(release):
    target = release / "val.jsonl.gz"
    target.write_bytes(gzip.compress(b'{"id": "x"}\n'))
    resign(release)
    with pytest.raises(ReleaseIntegrityError, match=r"val\.jsonl\.gz:1: not a valid record"):
        load_release(str(release)).pairs("val")


def test_non_gzip_split_names_the_file(release):
    (release / "train.jsonl.gz").write_bytes(b'{"id": "plain text, not gzip"}\n')
    resign(release)
    with pytest.raises(ReleaseIntegrityError, match=r"train\.jsonl\.gz: not a readable gzip"):
        load_release(str(release)).pairs("train")


def test_cli_error_is_one_line_and_a_json_document(release):
    damage_line(release)
    result = CliRunner().invoke(app, ["data", "stats", "--release", str(release), "--json"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == 1 and "train.jsonl.gz:2: not valid JSON" in doc["error"]
    (line,) = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert line.startswith("error: ") and "train.jsonl.gz:2" in line
