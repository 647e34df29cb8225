"""The shipped model's answers to the first 150 ``test_paraphrase`` questions (see README).

    HF_HUB_OFFLINE=1 .venv/bin/python tests/golden/record.py   # writes the golden file

``tests/test_shipped_model.py`` computes the same rows and compares them with the file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

GOLDEN = Path(__file__).parent / "shipped_answers_test_paraphrase_150.json"
N = 150


def golden_rows(model: str | Path) -> list[dict]:
    """Production and model-only answers of the first ``N`` test_paraphrase questions, with
    a phrase bank of the train pairs about their subjects (ranker included, if the model
    has one)."""
    from celltext.data.release import load_release
    from celltext.index import RetrievalIndex
    from celltext.inference.factory import load_predictor
    from celltext.teacher import load_teacher

    release = load_release()
    tests = release.pairs("test_paraphrase")[:N]
    subjects = {p.subject for p in tests}
    train = [p for p in release.pairs("train") if p.subject in subjects][:1500]
    teacher = load_teacher()
    bank = RetrievalIndex.from_release_pairs(train, teacher)
    served = load_predictor(str(model), teacher=teacher, bank=bank, backend="torch")
    plain = served.with_config(fallback={"enabled": False})
    questions = [p.question for p in tests]
    return [
        {"question": q, "answer": a.answer, "provenance": a.provenance,
         "confidence": round(a.confidence, 4), "generated": g.answer}
        for q, a, g in zip(questions, served.answer(questions), plain.answer(questions),
                           strict=True)
    ]  # fmt: skip


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from celltext.paths import default_model_dir

    rows = golden_rows(sys.argv[1] if len(sys.argv) > 1 else default_model_dir())
    GOLDEN.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(rows)} rows -> {GOLDEN}")
