"""Speculative (prompt-lookup) greedy decoding gives exactly the plain loop's tokens: on
random tiny decoders of every kind (attention, Mamba, conv; PyTorch and onnxruntime
steppers; prototypes that are the answer, an edit of it, or unrelated) and on the shipped
model's real questions and prototypes on both backends, in fewer decoder calls."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import celltext.models.decoders  # noqa: F401  (registers the zoo)
from celltext.generation import GenerationOptions, SpecialTokens
from celltext.generation import generate as plain_generate
from celltext.inference import speculative
from celltext.inference.speculative import Lookup, draft, greedy_run, prototype_tokens
from celltext.models.stepper import TorchStepper
from celltext.models.zoo import create_model

SPECIAL = SpecialTokens(0, 1, 2)
V = 64
DECODERS = {
    "ret_edit_v1": {"n_layers": 2, "max_proto_tokens": 8},
    "hybrid_cct_mamba_v1": {"pattern": "MAM", "d_state": 4},
    "enhanced_cct_v1": {"n_layers": 2},
}
OPTIONS = [
    GenerationOptions(max_new_tokens=24),
    GenerationOptions(max_new_tokens=7),
    GenerationOptions(
        max_new_tokens=12, repetition_penalty=1.3, no_repeat_ngram_size=2, min_new_tokens=5
    ),  # fmt: skip
]


# -- the draft ----------------------------------------------------------------------------
def test_the_draft_continues_the_prototype_after_the_last_ngram():
    proto = [10, 11, 12, 13, 14, 15]
    assert draft(proto, [10], 10) == [11, 12, 13, 14, 15]  # a copy: the rest at once
    assert draft(proto, [10, 11, 12], 2) == [13, 14]  # at most `limit`
    assert draft(proto, [10, 11, 12, 99, 13], 10) == [14, 15]  # realigned after an insertion
    assert draft(proto, [10, 11, 99], 10) == [13, 14, 15]  # a substitution skips one token
    assert draft(proto, [99], 10) == [11, 12, 13, 14, 15]  # a new first word replaces it
    assert draft(proto, [10, 11, 12, 13, 14, 15], 10) == []  # nothing left: eos is next
    assert draft(proto, [98, 99], 10) == []  # lost: a plain step
    assert draft([], [10], 5) == [] and draft(proto, [], 5) == []


def test_a_repeated_token_aligns_with_the_nearest_occurrence():
    proto = [5, 7, 5, 8, 9, 5, 6]
    lookup = Lookup(proto)
    assert lookup.draft([1, 2, 3, 4, 5], 2) == [6]  # the 5 at position 5, not 0 or 2
    assert lookup.draft([5], 2) == [7, 5]
    assert prototype_tokens(np.array([[4, 5, 0, 0], [0, 0, 0, 0]]), 0) == [[4, 5], []]


def test_greedy_run_accepts_the_agreeing_prefix_and_adds_the_next_token():
    logits = np.full((4, 8), -1.0, dtype=np.float32)
    logits[[0, 1, 2, 3], [5, 6, 4, 7]] = 1.0  # greedy: 5, then 6, then 4, then 7
    opts = GenerationOptions()
    assert greedy_run(logits, [3], [5, 6, 7], SPECIAL, opts) == [5, 6, 4]
    assert greedy_run(logits, [3], [4, 6, 7], SPECIAL, opts) == [5]
    assert greedy_run(logits[:1], [3], [], SPECIAL, opts) == [5]
    with pytest.raises(ValueError, match="greedy"):
        speculative.generate(None, [[1]], SPECIAL, GenerationOptions(num_beams=2))


# -- random tiny decoders -----------------------------------------------------------------
def _decoder(name: str, seed: int = 0):
    torch.manual_seed(seed)
    cfg = {"vocab_size": V, "d_model": 32, "n_heads": 2, "n_prefix": 4, **DECODERS[name]}
    return create_model(name, "decoder", cfg).eval()


def _inputs(model, batch: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    emb = F.normalize(torch.randn(batch, 384, generator=g), dim=-1)
    proto = torch.randint(3, V, (batch, 8), generator=g) if model.edits else None
    return emb, proto


def _drafts(reference: list[list[int]], seed: int = 0) -> list[list[int]]:
    """Per row: the answer itself, one token changed, two tokens inserted, or unrelated."""
    rng = np.random.default_rng(seed)
    out = []
    for b, ref in enumerate(reference):
        row = list(ref)
        if b % 4 == 1 and row:
            row[int(rng.integers(len(row)))] = int(rng.integers(3, V))
        elif b % 4 == 2:
            row = row[: len(row) // 2] + [5, 6] + row[len(row) // 2 :]
        elif b % 4 == 3:
            row = [int(t) for t in rng.integers(3, V, 6)]
        out.append(row)
    return out


class Counting:
    """A stepper that counts its decoder calls."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def first(self):
        self.calls += 1
        return self.inner.first()

    def next(self, tokens):
        self.calls += 1
        return self.inner.next(tokens)

    def verify(self, block):
        self.calls += 1
        return self.inner.verify(block)

    def keep(self, n):
        self.inner.keep(n)

    def reorder(self, index):
        self.inner.reorder(index)


@pytest.mark.parametrize("name", sorted(DECODERS))
@pytest.mark.parametrize("cached", [True, False])
def test_torch_speculative_equals_plain_greedy(name, cached):
    model = _decoder(name)
    for batch in (1, 3, 8):
        emb, proto = _inputs(model, batch, seed=batch)
        for opts in OPTIONS if cached else OPTIONS[:1]:
            ref = plain_generate(TorchStepper(model, emb, cached, proto), batch, SPECIAL, opts)
            stepper = TorchStepper(model, emb, cached, proto)
            got = speculative.generate(stepper, _drafts(ref, batch), SPECIAL, opts)
            assert got == ref, (name, cached, batch, opts)


def test_a_copied_answer_takes_one_verify_call():
    model = _decoder("ret_edit_v1")
    emb, proto = _inputs(model, 1)
    opts = GenerationOptions(max_new_tokens=24)
    plain = Counting(TorchStepper(model, emb, True, proto))
    (ref,) = plain_generate(plain, 1, SPECIAL, opts)
    spec = Counting(TorchStepper(model, emb, True, proto))
    assert speculative.generate(spec, [ref], SPECIAL, opts) == [ref]
    assert plain.calls == len(ref) and spec.calls == 2  # prefill + one verify of the rest


def _ort_stepper_factory(model, folder: Path):
    """OrtStepper over ``model``'s exported decoder graphs (a stand-in for OrtBackend)."""
    import onnxruntime as ort

    from celltext.export.onnx import export_decoder
    from celltext.inference.onnx_backend import OrtStepper

    info = export_decoder(model, 384, folder)

    def session(name):
        return ort.InferenceSession(str(folder / name), providers=["CPUExecutionProvider"])

    backend = SimpleNamespace(
        prefill=session("decoder_prefill.onnx"),
        prefill_edit=session("decoder_prefill_edit.onnx") if info["edits"] else None,
        step=session("decoder_step.onnx"),
        verify_session=session("decoder_verify.onnx"),
        state_names=[n for layer in info["state"] for n in layer["names"]],
        verify_max_tokens=info["verify"]["max_tokens"],
        truncatable=all(layer["kind"] == "KVCache" for layer in info["state"]),
        prefill_block_file=bool(info.get("prefill_block")),
    )
    if backend.prefill_block_file:
        backend.prefill_block = session("decoder_prefill_block.onnx")
    return lambda emb, proto: OrtStepper(
        backend, emb.numpy(), None if proto is None else proto.numpy()
    )


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_onnxruntime_speculative_equals_plain_greedy(name, tmp_path):
    """The verify graph (any block width; Mamba's in pieces of its chunk size) gives the
    logits of PyTorch's every position, and speculative decoding the plain tokens."""
    model = _decoder(name)
    stepper = _ort_stepper_factory(model, tmp_path)
    emb, proto = _inputs(model, 4)
    for width in (1, 5, 17, 33):
        ort_step, torch_step = stepper(emb, proto), TorchStepper(model, emb, True, proto)
        ort_step.first(), torch_step.first()
        block = np.random.default_rng(width).integers(3, V, (4, width))
        assert np.abs(ort_step.verify(block) - torch_step.verify(block)).max() < 1e-4
    for opts in OPTIONS:
        ref = plain_generate(TorchStepper(model, emb, True, proto), 4, SPECIAL, opts)
        assert plain_generate(stepper(emb, proto), 4, SPECIAL, opts) == ref
        assert speculative.generate(stepper(emb, proto), _drafts(ref), SPECIAL, opts) == ref
        if stepper(emb, proto).drafts_first:  # the first round without its prefill too
            no_block = stepper(emb, proto)
            no_block.drafts_first = False
            assert speculative.generate(no_block, _drafts(ref), SPECIAL, opts) == ref


def test_block_prefill_equals_prefill_then_verify(tmp_path):
    """``decoder_prefill_block.onnx`` (an editing decoder with attention caches only):
    the logits of <bos> and a draft, and the state after them, are those of the prefill
    then a verify of the draft; keep() cuts its state back like a verify's."""
    model = _decoder("ret_edit_v1")
    stepper = _ort_stepper_factory(model, tmp_path)
    emb, proto = _inputs(model, 3)
    block = np.random.default_rng(0).integers(3, V, (3, 6))
    block[:, 0] = SPECIAL.bos_id
    fused, split = stepper(emb, proto), stepper(emb, proto)
    assert fused.drafts_first
    got = fused.first_block(block)  # (B, W, V)
    want = np.concatenate([split.first()[:, None], split.verify(block[:, 1:])], axis=1)
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-4
    assert all(np.abs(a - b).max() < 1e-4 for a, b in zip(fused.state, split.state, strict=True))
    fused.keep(2), split.keep(1)  # <bos> + one draft token == one verified token
    assert [s.shape for s in fused.state] == [s.shape for s in split.state]
    tokens = block[:, 2]
    assert np.abs(fused.next(tokens) - split.next(tokens)).max() < 1e-4


# -- the backend's dispatch -----------------------------------------------------------------
def test_backend_generate_speculates_greedy_prototype_batches_in_groups(monkeypatch):
    from celltext.inference.torch_backend import TorchBackend

    system = SimpleNamespace(decoder=_decoder("ret_edit_v1"), core=torch.nn.Identity(), dim=384)
    system.eval = lambda: system
    system.to = lambda device: system
    backend = TorchBackend(system, tokenizer=None, speculative=2)
    assert TorchBackend(system, None, speculative=0).speculative_rows == 0
    monkeypatch.setenv("CELLTEXT_SPECULATIVE_ROWS", "5")
    assert TorchBackend(system, None).speculative_rows == 5
    calls = []
    real = speculative.generate
    monkeypatch.setattr(speculative, "generate", lambda *a, **k: calls.append(1) or real(*a, **k))
    emb, proto = _inputs(system.decoder, 3)
    greedy = GenerationOptions(max_new_tokens=10)
    ref = plain_generate(TorchStepper(system.decoder, emb, True, proto), 3, SPECIAL, greedy)
    assert backend.generate(emb.numpy()[:2], proto.numpy()[:2], greedy) == ref[:2]
    assert len(calls) == 1
    assert backend.generate(emb.numpy(), proto.numpy(), greedy) == ref  # 3 rows: groups 2 + 1
    assert len(calls) == 3
    backend.generate(emb.numpy()[:2], None, greedy)  # no prototype: plain
    backend.generate(emb.numpy()[:2], proto.numpy()[:2], GenerationOptions(num_beams=2))
    rng = np.random.default_rng(0)
    backend.generate(emb.numpy()[:2], proto.numpy()[:2], GenerationOptions(do_sample=True), rng)
    plain = TorchBackend(system, None, speculative=0)
    assert plain.generate(emb.numpy(), proto.numpy(), greedy) == ref
    assert len(calls) == 3


# -- the shipped model, on both backends ------------------------------------------------------
MODEL = Path(os.environ.get("CELLTEXT_SHIPPED_MODEL", "models/default"))


@pytest.fixture(scope="module")
def shipped(teacher, tmp_path_factory):
    """The shipped model's torch backend and an onnxruntime backend over its exported core
    and decoder, with 36 questions of release v1 and a prototype each: the reference answer
    (mostly copied) or another question's answer (edited)."""
    if not (MODEL / "model.safetensors").is_file():
        pytest.skip(f"no shipped model at {MODEL}")
    from celltext.data.release import load_release
    from celltext.export.onnx import export_core, export_decoder
    from celltext.index import unit_rows
    from celltext.inference.onnx_backend import OrtBackend
    from celltext.inference.torch_backend import TorchBackend
    from celltext.registry.checkpoint import load_checkpoint

    ckpt = load_checkpoint(MODEL)
    system = ckpt.model.float().eval()
    folder = tmp_path_factory.mktemp("shipped-onnx")
    tok = ckpt.tokenizer
    manifest = {
        "teacher": {"dim": 384},
        "core": export_core(system.core, 384, folder),
        "decoder": export_decoder(system.decoder, 384, folder)
        | {"bos_id": tok.bos_id, "eos_id": tok.eos_id, "pad_id": tok.pad_id},
    }
    tok.save(folder / "tokenizer.json")
    backends = {"torch": TorchBackend(system, tok), "onnxruntime": OrtBackend(folder, manifest)}
    pairs = load_release().pairs("test_paraphrase")[:36]
    questions = [p.question for p in pairs]
    answers = [p.answer for p in pairs]
    protos = [answers[i] if i % 3 else answers[(i + 7) % len(pairs)] for i in range(len(pairs))]
    embs = unit_rows(backends["torch"].core(teacher.encode(questions, cache=False)))
    width = backends["torch"].capabilities.max_proto_tokens
    proto_ids = np.full((len(protos), width), tok.pad_id, dtype=np.int64)
    for i, p in enumerate(protos):
        row = tok.encode(p)[:width]
        proto_ids[i, : len(row)] = row
    return backends, embs, proto_ids


@pytest.mark.parametrize("backend_name", ["torch", "onnxruntime"])
def test_shipped_model_speculative_equals_plain_greedy(shipped, backend_name):
    backends, embs, proto_ids = shipped
    backend = backends[backend_name]
    opts = GenerationOptions(max_new_tokens=48)
    plain_calls = spec_calls = 0
    for i in range(len(embs)):  # one question at a time, as served at batch 1
        e, p = embs[i : i + 1], proto_ids[i : i + 1]
        plain = Counting(backend.stepper(e, p))
        ref = plain_generate(plain, 1, backend.special, opts)
        spec = Counting(backend.stepper(e, p))
        protos = prototype_tokens(p, backend.special.pad_id)
        assert speculative.generate(spec, protos, backend.special, opts) == ref, i
        plain_calls, spec_calls = plain_calls + plain.calls, spec_calls + spec.calls
    assert spec_calls < plain_calls / 2  # a copied prototype: 2 calls (prefill, verify)
    for start in range(0, len(embs), 8):  # batches of up to 8 rows through Backend.generate
        e, p = embs[start : start + 8], proto_ids[start : start + 8]
        ref = plain_generate(backend.stepper(e, p), len(e), backend.special, opts)
        assert backend.generate(e, p, opts) == ref, start


GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "shipped_answers_test_paraphrase_150.json"


@pytest.mark.slow
def test_shipped_golden_answers_with_every_batch_speculative(teacher, monkeypatch, tmp_path):
    """The production path's recorded answers (``tests/golden``: edits of real phrase-bank
    prototypes, selector, confidences) with speculative decoding for every batch, on both
    backends: the first 60 questions in one batch (speculative groups of 8 rows), and 12
    one at a time. The plain loop recorded them, so equal answers are equal tokens."""
    if not (MODEL / "model.safetensors").is_file():
        pytest.skip(f"no shipped model at {MODEL}")
    import json

    from celltext.data.release import load_release
    from celltext.export.onnx import export_model
    from celltext.index import RetrievalIndex
    from celltext.inference.factory import load_predictor

    monkeypatch.setenv("CELLTEXT_SPECULATIVE_ROWS", "8")  # every row speculates, in groups
    recorded = json.loads(GOLDEN.read_text(encoding="utf-8"))
    release = load_release()
    tests = release.pairs("test_paraphrase")[: len(recorded)]  # the recorded bank, all 150
    golden = recorded[:60]  # answers do not depend on the batch (test_shipped_model.py)
    subjects = {p.subject for p in tests}
    train = [p for p in release.pairs("train") if p.subject in subjects][:1500]
    bank = RetrievalIndex.from_release_pairs(train, teacher)
    questions = [g["question"] for g in golden]
    served = load_predictor(str(MODEL), teacher=teacher, bank=bank, backend="torch")
    export_model(served, tmp_path / "onnx")
    for pred in (served, load_predictor(str(tmp_path / "onnx"), bank=bank)):
        assert pred.backend.speculative_rows == 8
        plain = pred.with_config(fallback={"enabled": False})
        rows = zip(questions, pred.answer(questions), plain.answer(questions), strict=True)
        got = [
            {"question": q, "answer": a.answer, "provenance": a.provenance,
             "confidence": round(a.confidence, 4), "generated": g.answer}
            for q, a, g in rows
        ]  # fmt: skip
        conf = [(r.pop("confidence"), g["confidence"]) for r, g in zip(got, golden, strict=True)]
        assert got == [{k: v for k, v in g.items() if k != "confidence"} for g in golden]
        # the same tokens; onnxruntime's teacher scores them within float noise (0.5088/9)
        assert max(abs(a - b) for a, b in conf) <= (0 if pred is served else 2e-4)
        for g in golden[:12]:
            (a,) = pred.answer([g["question"]])
            assert (a.answer, a.provenance) == (g["answer"], g["provenance"]), pred.backend.name
