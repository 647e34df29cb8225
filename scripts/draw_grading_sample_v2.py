"""Draw the random sample of 300 release-v2 answers that is graded by hand.

The draw is deterministic: every pair of every split of ``data/releases/v2`` is read,
the pairs are sorted by id, only the first pair (lowest id) of each distinct answer text
is kept (so no answer is graded twice), and ``random.Random(20261202).sample`` picks 300
of them. The sample is written, in draw order, to ``data/review/grading_sample_v2.csv``
with the grading columns (``grammatical``, ``intended_sense``, ``note``) empty; the
rubric is ``data/review/GRADING_RUBRIC_v2.md``.

    nice -n 19 .venv/bin/python scripts/draw_grading_sample_v2.py

The script refuses to overwrite a CSV that already holds grades (``--force`` does).
``--check`` only verifies that the committed CSV holds exactly the drawn pairs.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RELEASE_DIR = REPO_ROOT / "data" / "releases" / "v2"
OUT_PATH = REPO_ROOT / "data" / "review" / "grading_sample_v2.csv"
SPLITS = ("train", "val", "test_paraphrase", "test_unseen")
SEED = 20261202
N = 300
PAIR_COLUMNS = ("id", "split", "source", "domain", "qtype", "subject", "question", "answer")
GRADE_COLUMNS = ("grammatical", "intended_sense", "note")
COLUMNS = PAIR_COLUMNS + GRADE_COLUMNS


def load_pairs(release_dir: Path = RELEASE_DIR) -> list[dict]:
    """Every pair of every split, sorted by id."""
    pairs: list[dict] = []
    for split in SPLITS:
        with gzip.open(release_dir / f"{split}.jsonl.gz", "rt", encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    pairs.append(json.loads(line))
    pairs.sort(key=lambda p: p["id"])
    return pairs


def unique_by_answer(pairs: list[dict]) -> list[dict]:
    """The first pair (in the given order) of each distinct answer text."""
    seen: set[str] = set()
    out = []
    for pair in pairs:
        if pair["answer"] not in seen:
            seen.add(pair["answer"])
            out.append(pair)
    return out


def draw(release_dir: Path = RELEASE_DIR, n: int = N, seed: int = SEED) -> list[dict]:
    """The sample: ``n`` pairs drawn with ``random.Random(seed)``, in draw order."""
    pool = unique_by_answer(load_pairs(release_dir))
    return random.Random(seed).sample(pool, n)


def write_csv(sample: list[dict], path: Path = OUT_PATH) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for pair in sample:
            row = {c: pair[c] for c in PAIR_COLUMNS}
            row.update({c: "" for c in GRADE_COLUMNS})
            writer.writerow(row)


def read_csv(path: Path = OUT_PATH) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT_PATH)
    parser.add_argument("--force", action="store_true", help="overwrite a graded CSV")
    parser.add_argument(
        "--check", action="store_true", help="only check that --out holds exactly the drawn pairs"
    )
    args = parser.parse_args(argv)
    sample = draw()
    if args.check:
        rows = read_csv(args.out)
        drawn = [tuple(p[c] for c in PAIR_COLUMNS) for p in sample]
        held = [tuple(r[c] for c in PAIR_COLUMNS) for r in rows]
        if drawn != held:
            print(f"{args.out} does not hold the drawn sample", file=sys.stderr)
            return 1
        print(f"{args.out}: the {len(rows)} drawn pairs")
        return 0
    if args.out.exists() and not args.force:
        if any(r.get(c, "").strip() for r in read_csv(args.out) for c in GRADE_COLUMNS):
            print(f"{args.out} holds grades; use --force to overwrite", file=sys.stderr)
            return 1
    write_csv(sample, args.out)
    print(f"wrote {len(sample)} pairs to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
