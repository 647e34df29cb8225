"""Build the held-out paraphrase set: trained subjects asked in phrasings no template uses.

    python scripts/build_heldout.py            # writes data/heldout/paraphrase_v1.jsonl
    python scripts/build_heldout.py v2         # the same frames over release v2 (paraphrase_v2)

The frames below were written by hand for this set and occur in no template of
``celltext/data/templates.py`` (checked at build time). Subjects are chosen from release
v1's ``train`` split by a hash of the subject (deterministic, independent of file order),
one fact per subject, only facts whose (subject, type) has exactly one training answer
(so the reference is unambiguous). Never train or tune on this file.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from celltext.data.phrasing import cap, with_article  # noqa: E402
from celltext.data.release import load_release  # noqa: E402

FRAMES: dict[str, list[str]] = {
    "definition": [
        "I keep hearing the term {x}. What is it?",
        "Could you tell me what {x} means?",
        "In plain words, what is {xa}?",
        "What exactly is {xa}?",
        "Explain {x} to me.",
        "I'd like to know what {x} is.",
        "{X}? What's that?",
        "Quick question: what is {xa}?",
        "Help me understand {x}.",
        "What would a dictionary say {x} is?",
    ],
    "acronym": [
        "What's the full form of {x}?",
        "{x} is an abbreviation of what?",
        "What is the long form of {x}?",
        "Could you expand {x} for me?",
        "What do the initials {x} mean?",
    ],
    "kind_of": [
        "{X} is what type of thing?",
        "What sort of thing is {xa}?",
        "What general type does {x} fall under?",
        "Classify {x}: what is it a type of?",
    ],
    "other_name": [
        "What's a different word for {x}?",
        "Give me a word that means the same as {x}.",
        "What word can replace {x}?",
        "Tell me another way to say {x}.",
    ],
    "function": [
        "Can you tell me what {x} does?",
        "What's the purpose of {x}?",
        "Explain the behaviour of {x}.",
        "What does {x} do when called?",
    ],
    "part_of": [
        "{X} belongs to what larger thing?",
        "What is {xa} a component of?",
        "Which whole is {xa} one part of?",
    ],
}
PER_TYPE = {"definition": 110, "acronym": 50, "kind_of": 50, "other_name": 40,
            "function": 40, "part_of": 40}  # fmt: skip


def _hash(text: str) -> str:
    return hashlib.sha256(f"heldout-v1|{text}".encode()).hexdigest()


def _check_frames() -> None:
    from celltext.data import templates

    source = Path(templates.__file__).read_text()
    for frames in FRAMES.values():
        for frame in frames:
            if frame in source:
                raise SystemExit(f"frame {frame!r} is a release template")


def build(out: Path, release: str = "v1") -> int:
    _check_frames()
    pairs = load_release(release).pairs("train")
    answers: dict[tuple[str, str], set[str]] = defaultdict(set)
    first: dict[tuple[str, str], object] = {}
    for p in pairs:
        answers[(p.subject, p.qtype)].add(p.answer)
        first.setdefault((p.subject, p.qtype), p)
    rows = []
    for qtype, frames in FRAMES.items():
        keys = sorted(
            (k for k in first if k[1] == qtype and len(answers[k]) == 1), key=lambda k: _hash(k[0])
        )
        for key in keys[: PER_TYPE[qtype]]:
            p = first[key]
            x = p.subject
            plain = qtype == "acronym" or x[:1].isupper() or any(c in x for c in "._()")
            slots = {"x": x, "xa": x if plain else with_article(x), "X": cap(x)}
            frame_id = int(_hash(p.id), 16) % len(frames)
            rows.append({
                "id": f"hp-{_hash(p.id)[:12]}", "question": frames[frame_id].format(**slots),
                "answer": p.answer, "subject": x, "qtype": qtype, "domain": p.domain,
                "frame": f"{qtype}_h{frame_id + 1}", "source_pair": p.id,
            })  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return len(rows)


if __name__ == "__main__":
    version = sys.argv[1] if len(sys.argv) > 1 else "v1"  # the release the references come from
    target = ROOT / "data" / "heldout" / f"paraphrase_{version}.jsonl"
    print(f"{build(target, version)} questions -> {target.relative_to(ROOT)}")
