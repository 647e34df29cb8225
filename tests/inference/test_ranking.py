"""The ranker: its features, the numpy forward against torch, and training on a toy bank."""

import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from celltext.data.intents import INTENTS, OPEN_PHRASINGS, open_questions
from celltext.index import RetrievalIndex
from celltext.inference.ranking import (
    RANKER_FILE,
    RANKER_META,
    Ranker,
    candidate_intents,
    names_subject,
    static_features,
    subject_scores,
)
from celltext.models.ranker import RankerNet, listwise_loss
from celltext.training.rank import RankTrainConfig, fit, positives, ranker_config, top1


def test_subject_scores_tell_namesakes_and_typos():
    assert subject_scores("RidgeCV", "what does RidgeCV do")[0] == 1.0
    assert subject_scores("Ridge", "what does RidgeCV do")[0] == 0.0  # not a whole word
    assert subject_scores("k-means", "K means clustering - what is it?")[0] == 1.0
    exact, fuzzy, _ = subject_scores("gradient descent", "whats gradiant descent")
    assert exact == 0.0 and 0.5 < fuzzy < 1.0
    assert subject_scores("Brazil (country)", "where is brazil")[0] == 1.0


@pytest.mark.parametrize(
    ("subject", "question", "named"),
    [
        ("Grad-CAM", "gradcam heatmaps, what are they", True),  # written without the hyphen
        ("Mask R-CNN", "mask rcnn?", True),
        ("Zipf's law", "what is zipf law", True),  # possessive dropped
        ("hydrogen bond", "hydrogen bonds in chemistry", True),  # plural
        ("torch.nn.ModuleDict", "which pytorch module has ModuleDict", True),  # last part
        ("numpy.allclose", "np.allclose what does it check", True),
        ("ring", "what is a string", False),  # inside another word
        ("os.path", "what is a path", False),  # a last part under 5 letters names nothing
        ("Ridge", "what does RidgeCV do", False),
    ],
)
def test_names_subject_accepts_how_people_write_a_name(subject, question, named):
    assert names_subject(subject, question) is named
    exact, _, length = subject_scores(subject, question)
    assert exact == float(named) and (length > 0) is named


def test_open_questions_cover_every_open_kind():
    qs = open_questions(["perceptron", "LSTM", "Brazil (country)"], per_frame=1, seed=0)
    assert {i for _, i in qs} == set(OPEN_PHRASINGS)
    assert not any("(" in q for q, _ in qs)
    assert all(i in INTENTS for _, i in qs)


def _toy_bank(n=40, d=16, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, d)).astype(np.float32)
    a = rng.normal(size=(n, d)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    subjects = [f"thing{i // 2}" for i in range(n)]
    qtypes = ["definition" if i % 2 == 0 else "acronym" for i in range(n)]
    return RetrievalIndex(
        [f"q{i}" for i in range(n)], [f"answer {i}" for i in range(n)], q, a,
        subjects=subjects, qtypes=qtypes,
    )  # fmt: skip


def test_numpy_forward_matches_torch():
    bank = _toy_bank()
    q = bank.question_embs[:6] + 0.1
    rows, cos = bank.top_questions(q, k=5)
    static = static_features([f"what is thing{i}" for i in range(6)], q, None, bank, rows, cos)
    intents = candidate_intents(bank, rows)
    torch.manual_seed(0)
    net = RankerNet(_cfg(q.shape[1]))
    with torch.no_grad():
        want, want_i = net(torch.from_numpy(q), torch.from_numpy(static), torch.from_numpy(intents))
    ranker = Ranker({k: v.numpy() for k, v in net.state_dict().items()})
    got, got_i = ranker.scores(static, intents, q)
    np.testing.assert_allclose(got, want.numpy(), atol=1e-5)
    np.testing.assert_allclose(got_i, want_i.numpy(), atol=1e-5)


def _cfg(dim):
    return ranker_config(dim, intent_hidden=32)


def test_training_learns_the_toy_task():
    """Each subject has a definition and an acronym pair whose known questions are equally
    near the question (retrieval picks between them by noise); only the question's intent,
    a direction in its embedding, tells which one is asked."""
    rng = np.random.default_rng(1)
    n_subj, d, N = 30, 16, 900
    base = rng.normal(size=(n_subj, d)).astype(np.float32)
    qb = np.repeat(base, 2, axis=0) + 0.3 * rng.normal(size=(2 * n_subj, d)).astype(np.float32)
    bank = _toy_bank(n=2 * n_subj, d=d)
    bank.question_embs = qb / np.linalg.norm(qb, axis=1, keepdims=True)
    target = rng.integers(0, 2 * n_subj, N)
    intent_dir = rng.normal(size=(2, d)).astype(np.float32)
    q = base[target // 2] + 0.6 * intent_dir[target % 2]
    q = (q + 0.1 * rng.normal(size=(N, d))).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    rows, cos = bank.top_questions(q, k=4)
    questions = [f"about thing{t // 2}" for t in target]
    static = static_features(questions, q, None, bank, rows, cos)
    intents = candidate_intents(bank, rows)
    ex = SimpleNamespace(answers=[bank.answers[t] for t in target], hide_subject=np.zeros(N, bool))
    pos = positives(bank, rows, ex)
    labels = np.array([INTENTS.index(bank.qtypes[t]) for t in target])
    data = {
        "q": torch.from_numpy(q), "static": torch.from_numpy(static),
        "intents": torch.from_numpy(intents), "pos": torch.from_numpy(pos),
        "intent": torch.from_numpy(labels),
    }  # fmt: skip
    net = RankerNet(_cfg(d))
    losses = fit(net, data, RankTrainConfig(epochs=20, batch_size=64, lr=1e-2))
    assert losses[-1] < losses[0]
    ranker = Ranker({k: v.detach().numpy() for k, v in net.state_dict().items()})
    logp, _ = ranker.scores(static, intents, q)
    retrieval = float(pos[:, 0].mean())
    assert retrieval < 0.8
    assert top1(logp, pos) > retrieval + 0.15  # the intent head beats the nearest question


def test_listwise_loss_counts_every_positive():
    logp = torch.log_softmax(torch.tensor([[1.0, 1.0, 0.0]]), dim=1)
    both = listwise_loss(logp, torch.tensor([[True, True, False]]))
    one = listwise_loss(logp, torch.tensor([[True, False, False]]))
    assert both < one


def test_a_damaged_ranker_file_is_refused(tmp_path):
    net = RankerNet(_cfg(16))
    np.savez(tmp_path / RANKER_FILE, **{k: v.numpy() for k, v in net.state_dict().items()})
    (tmp_path / RANKER_META).write_text('{"sha256": "0000"}')
    with pytest.raises(ValueError, match="sha256 mismatch"):
        Ranker.load(tmp_path)
    assert Ranker.load(tmp_path / "nothing-here") is None


def test_save_and_load_round_trip(tmp_path):
    net = RankerNet(_cfg(16))
    ranker = Ranker({k: v.detach().numpy() for k, v in net.state_dict().items()},
                    {"config": {"dev_fraction": 0.05, "dev_templates": 0.25}})  # fmt: skip
    ranker.save(tmp_path)
    back = Ranker.load(tmp_path)
    assert back.dev_fraction == 0.05 and back.dev_templates == 0.25
    for k, v in ranker.w.items():
        np.testing.assert_array_equal(back.w[k], v)
    (tmp_path / RANKER_FILE).write_bytes((tmp_path / RANKER_FILE).read_bytes()[:-8])
    with pytest.raises(ValueError, match="unreadable ranker"):
        Ranker.load(tmp_path)


def test_the_ranker_shares_the_retrieval_scan():
    """retrieve() scans the index once; the ranker's choice becomes the retrieved row."""
    from celltext.inference.candidates import retrieve

    bank = _toy_bank()
    torch.manual_seed(0)
    net = RankerNet(_cfg(bank.dim))
    ranker = Ranker({k: v.detach().numpy() for k, v in net.state_dict().items()})
    q = bank.question_embs[:3]
    calls = []
    scan = bank.top_questions
    bank.top_questions = lambda *a, **kw: calls.append(kw.get("k")) or scan(*a, **kw)
    found = retrieve(bank, ["what is thing0"] * 3, q, q, ranker=ranker)
    assert calls == [ranker.top_k]
    want = ranker.rank(["what is thing0"] * 3, q, q, bank, found=scan(q, k=ranker.top_k))
    np.testing.assert_array_equal(found.retrieved, want.rows)
    np.testing.assert_allclose(found.features.rank_prob, want.prob)


def test_wider_phrasings_are_never_test_wordings_and_fill_the_subject():
    import re

    from celltext.data import templates
    from celltext.data.intents import RELEASE_PHRASINGS, release_question

    def shape(text):
        return re.sub(r"\W+", " ", re.sub(r"\{\w+\}", "X", text)).strip().lower()

    # never a test_paraphrase wording (a few repeat training templates, which is harmless)
    reserved = {shape(t.text) for t in templates.by_id("v2").values() if t.reserved}
    frames = [f for fs in RELEASE_PHRASINGS.values() for f in fs]
    assert not [f for f in frames if shape(f) in reserved]
    rng = random.Random(0)
    assert release_question("acronym", "CNN", rng).count("CNN") == 1
    assert "(" not in release_question("definition", "Brazil (country)", rng)
    assert release_question("property", "iron", rng) is None  # no frames: not asked
