"""``celltext ask``, ``celltext answer`` (resumable batch) and ``celltext decode``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from serving_tiny import PAIRS, tiny_checkpoint  # noqa: E402
from typer.testing import CliRunner

from celltext.cli import app  # noqa: E402

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("tiny_release_env")


@pytest.fixture(scope="module")
def teacher():
    from celltext.teacher import load_teacher

    return load_teacher("minilm")


@pytest.fixture(scope="module")
def ckpt(teacher, tmp_path_factory):
    return str(
        tiny_checkpoint(tmp_path_factory.mktemp("cli") / "fitted", teacher=teacher, steps=100)
    )


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_ask_json(ckpt):
    out = _json(runner.invoke(app, ["ask", PAIRS[0][0], "--model", ckpt, "--json"]))
    assert out["answer"] == PAIRS[0][1]
    assert {"answer", "confidence", "fallback", "latency_ms", "model"} <= set(out)
    assert out["fallback"] is False and out["model"] == "tiny-mlp-ret/0"


def test_ask_plain_and_options(ckpt):
    result = runner.invoke(app, ["ask", PAIRS[1][0], "--model", ckpt])
    assert result.exit_code == 0 and result.stdout.strip() == PAIRS[1][1]
    low = _json(runner.invoke(app, ["ask", PAIRS[1][0], "-m", ckpt, "--threshold", "1", "--json"]))
    assert low["fallback"] is True and low["fallback_reason"].startswith("low_confidence")
    raw = _json(runner.invoke(app, ["ask", PAIRS[1][0], "-m", ckpt, "--threshold", "1",
                                    "--no-fallback", "--json"]))  # fmt: skip
    assert raw["fallback"] is False and raw["answer"] == PAIRS[1][1]
    retrieval = _json(
        runner.invoke(app, ["ask", "Capital city of France?", "-m", "retrieval", "--json"])
    )
    assert retrieval["answer"] == PAIRS[5][1] and retrieval["model"].startswith("retrieval")


def test_ask_errors(ckpt, tmp_path):
    missing = runner.invoke(app, ["ask", "hi", "--model", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "cannot load model" in " ".join(missing.output.split())
    empty = runner.invoke(app, ["ask", "  ", "--model", ckpt])
    assert empty.exit_code == 2 and "empty" in empty.output


def test_answer_is_streaming_resumable_and_tolerant(ckpt, tmp_path):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [json.dumps({"id": f"q{i}", "question": q}) for i, (q, _) in enumerate(PAIRS[:3])]
    lines.insert(1, "{not json")
    lines.append(json.dumps({"id": "q9"}))
    src.write_text("\n".join(lines) + "\n")
    args = ["answer", "--input", str(src), "--output", str(dst), "--model", ckpt, "--json",
            "--batch-size", "2"]  # fmt: skip
    first = _json(runner.invoke(app, args))
    assert first["written"] == 3 and first["skipped_existing"] == 0
    assert [m["line"] for m in first["malformed"]] == [2, 5]
    rows = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["q0", "q1", "q2"]
    assert [r["answer"] for r in rows] == [a for _, a in PAIRS[:3]]
    assert set(rows[0]) >= {"id", "question", "answer", "confidence", "fallback"}

    again = _json(runner.invoke(app, args))
    assert again["written"] == 0 and again["skipped_existing"] == 3

    # an interrupted run left a torn last line; the next run repairs it and goes on
    with dst.open("a") as fh:
        fh.write('{"id": "q3", "quest')
    with src.open("a") as fh:
        fh.write(json.dumps({"id": "q3", "question": PAIRS[3][0]}) + "\n")
    resumed = _json(runner.invoke(app, args))
    assert resumed["written"] == 1 and resumed["skipped_existing"] == 3
    rows = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["q0", "q1", "q2", "q3"]


def test_decode(ckpt, teacher, tmp_path):
    good = tmp_path / "emb.npy"
    np.save(good, teacher.encode([PAIRS[2][1], PAIRS[4][1]]))
    out = _json(runner.invoke(app, ["decode", "--input", str(good), "--model", ckpt, "--json"]))
    assert [t["text"] for t in out["texts"]] == [PAIRS[2][1], PAIRS[4][1]] and out["dim"] == 384
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 100), dtype=np.float32))
    result = runner.invoke(app, ["decode", "--input", str(bad), "--model", ckpt, "--json"])
    assert result.exit_code == 2
    message = " ".join(result.output.split())  # rich wraps long lines
    assert "expected embeddings of shape (N, 384)" in message and "got shape (2, 100)" in message
    text = tmp_path / "text.npy"
    np.save(text, np.array(["a", "b"]))
    assert runner.invoke(app, ["decode", "--input", str(text), "--model", ckpt]).exit_code == 2


def test_decode_modes(ckpt, teacher, tmp_path):
    emb = tmp_path / "emb.npy"
    np.save(emb, teacher.encode([PAIRS[2][1]]))
    base = ["decode", "--input", str(emb), "--model", ckpt, "--json"]
    out = _json(runner.invoke(app, [*base, "--mode", "search", "--search-prototypes", "2"]))
    assert out["mode"] == "search" and out["texts"][0]["text"] == PAIRS[2][1]
    result = runner.invoke(app, [*base, "--mode", "beam"])
    assert result.exit_code == 2 and "--mode must be" in " ".join(result.output.split())
