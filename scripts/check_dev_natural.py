"""Validate the natural-question development set (data/dev/natural_dev_v1.jsonl).

    python scripts/check_dev_natural.py                 # the default file, release v2
    python scripts/check_dev_natural.py path/to/file.jsonl

Checks, each failure printed with the row id, exit status 1 if any:

- every line is a JSON object with exactly the schema's keys; ids are unique and numbered
  ``nd-0001``, ``nd-0002``, ... in file order; questions are non-empty, stripped and not
  repeated (case and punctuation ignored);
- answerable rows: ``source_pair`` is a release v2 ``train`` pair whose answer, subject,
  qtype and domain are copied verbatim, ``kind`` equals ``qtype``, no pair is used twice;
- unanswerable rows: empty answer, subject, qtype and source_pair, domain ``out_of_scope``,
  ``kind`` one of the unanswerable kinds;
- no question equals (case and punctuation ignored) a question of any v2 split
  (train, val, test_paraphrase, test_unseen) or of data/heldout/natural_v1.jsonl;
- no answerable subject is a subject of data/heldout/natural_v1.jsonl (case-insensitive),
  so the two sets are disjoint by subject;
- at most 4 questions share one shape once their subject is masked.

Then prints counts by part, question type, kind, style and domain. Standard library only.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEV_FILE = ROOT / "data" / "dev" / "natural_dev_v1.jsonl"
RELEASE_DIR = ROOT / "data" / "releases" / "v2"
HELDOUT_NATURAL = ROOT / "data" / "heldout" / "natural_v1.jsonl"
SPLITS = ("train", "val", "test_paraphrase", "test_unseen")

KEYS = {"id", "question", "answerable", "answer", "subject", "qtype", "domain",
        "source_pair", "kind", "style"}  # fmt: skip
UNANSWERABLE_KINDS = {"who", "when", "why", "causes", "how_many", "quantity", "comparison",
                      "how_to", "other"}  # fmt: skip
AI_DOMAINS = {"ai_ml_fundamentals", "deep_learning", "nlp_llm", "computer_vision",
              "reinforcement_learning", "mlops_engineering"}  # fmt: skip
MAX_SHAPE = 4


def norm(text: str) -> str:
    """Case- and punctuation-insensitive form of a question."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def shape(question: str, subject: str) -> str:
    """The question with its subject masked (when the subject occurs in it verbatim)."""
    q, s = norm(question), norm(subject)
    if s and f" {s} " in f" {q} ":
        q = f" {q} ".replace(f" {s} ", " X ").strip()
    return q


def read_jsonl_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else DEV_FILE
    errors: list[str] = []

    def fail(msg: str) -> None:
        errors.append(msg)

    # -- parse -----------------------------------------------------------------------------
    rows: list[dict] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            fail(f"line {n}: empty line")
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            fail(f"line {n}: not JSON ({exc})")
            continue
        if not isinstance(row, dict):
            fail(f"line {n}: not a JSON object")
            continue
        if set(row) != KEYS:
            fail(f"line {n}: keys {sorted(set(row) ^ KEYS)} missing or extra")
            continue
        rows.append(row)

    # -- the file on its own ---------------------------------------------------------------
    ids = Counter(r["id"] for r in rows)
    for rid, c in ids.items():
        if c > 1:
            fail(f"{rid}: id repeated {c} times")
    for i, r in enumerate(rows, 1):
        if r["id"] != f"nd-{i:04d}":
            fail(f"{r['id']}: expected id nd-{i:04d} at row {i}")
    seen: dict[str, str] = {}
    for r in rows:
        rid, q = r["id"], r["question"]
        for key in KEYS - {"answerable"}:
            if not isinstance(r[key], str):
                fail(f"{rid}: {key} must be a string")
        if not isinstance(r["answerable"], bool):
            fail(f"{rid}: answerable must be true or false")
        if not isinstance(q, str) or not q.strip() or q != q.strip():
            fail(f"{rid}: empty or unstripped question")
            continue
        if not r["style"]:
            fail(f"{rid}: empty style")
        k = norm(q)
        if k in seen:
            fail(f"{rid}: same question as {seen[k]}")
        seen.setdefault(k, rid)

    # -- against the release and the held-out set ------------------------------------------
    split_rows = {s: read_jsonl_gz(RELEASE_DIR / f"{s}.jsonl.gz") for s in SPLITS}
    train = {p["id"]: p for p in split_rows["train"]}
    known = {norm(p["question"]): s for s, ps in split_rows.items() for p in ps}
    heldout = [json.loads(x) for x in HELDOUT_NATURAL.read_text(encoding="utf-8").splitlines()
               if x.strip()]  # fmt: skip
    for h in heldout:
        known.setdefault(norm(h["question"]), "heldout natural_v1")
    heldout_subjects = {h["subject"].lower() for h in heldout if h.get("subject")}

    used: Counter[str] = Counter()
    for r in rows:
        rid = r["id"]
        if r["answerable"] is True:
            pair = train.get(r["source_pair"])
            if pair is None:
                fail(f"{rid}: source_pair {r['source_pair']!r} is not a v2 train pair")
            else:
                for key in ("answer", "subject", "qtype", "domain"):
                    if r[key] != pair[key]:
                        fail(f"{rid}: {key} {r[key]!r} != train pair's {pair[key]!r}")
            if r["kind"] != r["qtype"]:
                fail(f"{rid}: kind {r['kind']!r} != qtype {r['qtype']!r}")
            if r["domain"] == "out_of_scope" or not r["answer"]:
                fail(f"{rid}: answerable row without answer or with domain out_of_scope")
            if r["subject"].lower() in heldout_subjects:
                fail(f"{rid}: subject {r['subject']!r} is a natural_v1 subject")
            used[r["source_pair"]] += 1
        elif r["answerable"] is False:
            if r["answer"] or r["subject"] or r["qtype"] or r["source_pair"]:
                fail(f"{rid}: unanswerable row needs empty answer/subject/qtype/source_pair")
            if r["domain"] != "out_of_scope":
                fail(f"{rid}: unanswerable row needs domain out_of_scope")
            if r["kind"] not in UNANSWERABLE_KINDS:
                fail(f"{rid}: kind {r['kind']!r} not one of {sorted(UNANSWERABLE_KINDS)}")
        where = known.get(norm(r["question"]))
        if where:
            fail(f"{rid}: question {r['question']!r} is a question of {where}")
    for pid, c in used.items():
        if c > 1:
            fail(f"source_pair {pid} used {c} times")

    shapes = Counter(shape(r["question"], r["subject"]) for r in rows)
    for s, c in shapes.items():
        if c > MAX_SHAPE:
            fail(f"{c} questions share the shape {s!r} (at most {MAX_SHAPE})")

    # -- counts ----------------------------------------------------------------------------
    answerable = [r for r in rows if r["answerable"] is True]
    unanswerable = [r for r in rows if r["answerable"] is False]
    n_ai = sum(r["domain"] in AI_DOMAINS for r in answerable)
    print(f"{path}: {len(rows)} rows, {len(answerable)} answerable "
          f"({n_ai} in the AI/ML domains), {len(unanswerable)} unanswerable")  # fmt: skip
    subjects = {r["subject"].lower() for r in answerable}
    print(f"  answerable subjects: {len(subjects)} distinct, "
          f"{len(subjects & heldout_subjects)} shared with natural_v1")  # fmt: skip
    for title, counts in (
        ("qtype", Counter(r["qtype"] for r in answerable)),
        ("kind (unanswerable)", Counter(r["kind"] for r in unanswerable)),
        ("style", Counter(r["style"] for r in rows)),
        ("domain (answerable)", Counter(r["domain"] for r in answerable)),
    ):
        print(f"  {title}: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))

    if errors:
        print(f"FAILED: {len(errors)} problem(s)", file=sys.stderr)
        for e in errors:
            print(f"  {e}", file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
