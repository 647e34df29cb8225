"""Building a release: sources -> facts -> quality control -> templates -> splits -> files.

Stages (each counted in the build report stored in the manifest):

1. *collect*: every source yields facts; malformed entries are skipped and counted.
2. *well-formed*: :func:`celltext.data.quality.well_formed` filters answers.
3. *one fact per (subject, type)*: sources are ordered by trust (glossary, docstrings,
   FOLDOC, WordNet, elements, Jargon, VERA); the first wins.
4. *review*: facts on the reviewed reject list are dropped.
5. *caps*: over-represented domains are subsampled by a hash of the fact id.
6. *exact duplicates*, then *teacher embedding*: near-duplicates and incoherent answers
   (subject-answer cosine below a floor) are dropped.
7. *splits and templates*, then the release files.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from celltext import __version__
from celltext.config import Config, require
from celltext.data import quality, splits, templates
from celltext.data.clean import english_ratio, normalise_for_match, token_count, usable_extra
from celltext.data.release import write_release
from celltext.data.review import REJECTS_FILE, load_rejects
from celltext.data.schema import DOMAINS, Fact, QAPair
from celltext.data.sources.base import SkipLog, Source
from celltext.data.sources.factories import SOURCE_FACTORIES
from celltext.paths import REPO_ROOT, releases_dir

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)
RELEASE_CONFIGS = REPO_ROOT / "configs" / "releases"  # <version>.yaml: a release's BuildConfig
# Fields added after release v1, left out of the config's dict (and so of its hash) while they
# hold these defaults: the v1 config still hashes to the value in its manifest.
_LATER_FIELDS = {"glossary_subdirs": [], "glossary_top_level_nouns": False,
                 "template_set": "v1", "senses": "single", "grammar_gate": False}  # fmt: skip


@dataclass
class BuildConfig(Config):
    """Everything that decides the content of a release (hashed into the manifest)."""

    version: str = "v1"
    sources: tuple[str, ...] = (
        "glossary",
        "docstrings",
        "foldoc",
        "wordnet",
        "elements",
        "jargon",
        "vera",
    )
    dictd_dir: str = "/usr/share/dictd"
    glossary_dir: str = ""  # empty: the glossary shipped in celltext/data/glossary
    # sub-folders of the glossary read after its top-level files (release v2: ["v2"]), and
    # whether the top-level files' `noun` keys are read (v1 guessed articles from definitions)
    glossary_subdirs: tuple[str, ...] = ()
    glossary_top_level_nouns: bool = False
    # question templates (celltext.data.templates.TEMPLATE_SETS): "v2" adds casual phrasings
    template_set: Literal["v1", "v2"] = "v1"
    # word senses (celltext.data.sources.senses): "single" (v1: one sense per word, source
    # precedence decides) or "qualified" (distinct senses become "Brazil (country)" etc.)
    senses: Literal["single", "qualified"] = "single"
    # repair what the grammar checker flags and drop what it cannot repair
    # (celltext.data.grammar_gate); off in v1, whose answers stay as they were built
    grammar_gate: bool = False
    require_all_sources: bool = True
    wordnet_max_general: int = 7000
    wordnet_max_examples: int = 2500
    docstrings_max_per_module: int = 120
    max_per_domain: dict[str, int] = field(
        default_factory=lambda: {"general_knowledge": 12000, "programming_algorithms": 10000}
    )
    teacher: str = "minilm"
    near_duplicate_threshold: float = 0.97
    coherence_floor: float = 0.0
    unseen_fraction: float = 0.06
    val_fraction: float = 0.05
    paraphrase_fraction: float = 0.06
    split_salt: str = "celltext-v1"
    max_extra_texts: int = 40000
    # relative paths are under the repository, so the config (and its hash) is the same in
    # every clone; an absolute path is used as given
    rejects_file: str = REJECTS_FILE.relative_to(REPO_ROOT).as_posix()
    embed_batch_size: int = 64

    def validate(self) -> None:
        require(bool(self.version.strip()), "version", "must not be empty")
        for name in ("unseen_fraction", "val_fraction", "paraphrase_fraction"):
            require(0.0 <= getattr(self, name) < 0.5, name, "must be in [0, 0.5)")
        require(0.5 < self.near_duplicate_threshold <= 1.0, "near_duplicate_threshold", "(0.5, 1]")
        require(-1.0 <= self.coherence_floor < 1.0, "coherence_floor", "must be in [-1, 1)")
        unknown = sorted(set(self.max_per_domain) - set(DOMAINS))
        require(not unknown, "max_per_domain", f"unknown domains {unknown}")
        known = set(SOURCE_FACTORIES)
        require(set(self.sources) <= known, "sources", f"choose from {sorted(known)}")
        nouns = bool(self.glossary_subdirs) or self.glossary_top_level_nouns  # plurals, usages
        require(not nouns or self.template_set != "v1", "template_set", "glossary nouns need v2")

    def to_dict(self) -> dict[str, Any]:
        """As :meth:`Config.to_dict`, without the later fields that hold their defaults."""
        d = super().to_dict()
        return {k: v for k, v in d.items() if k not in _LATER_FIELDS or v != _LATER_FIELDS[k]}

    @classmethod
    def for_version(cls, version: str) -> BuildConfig:
        """The config of a release: ``configs/releases/<version>.yaml``, else the defaults
        (release v1's config) under that version name."""
        path = RELEASE_CONFIGS / f"{version}.yaml"
        return (cls.load(path) if path.is_file() else cls()).replace(version=version)


class SourceMissingError(RuntimeError):
    """A required source is not installed (run scripts/install_sources.sh)."""


@dataclass
class BuildResult:
    """What a build produced."""

    path: Path
    pairs: list[QAPair]
    report: dict[str, Any]


def fact_key(fact: Fact) -> str:
    """The stable id of a fact (see :func:`celltext.data.splits.fact_id`)."""
    return splits.fact_id(fact.source, fact.qtype, fact.subject, fact.aspect)


def question_for(fact: Fact, cfg: BuildConfig, reserved: bool = False) -> tuple[str, str]:
    """``(question, template_id)`` for a fact (deterministic)."""
    fid = fact_key(fact)
    tpl = templates.choose(
        fact.qtype, fact.style, fid, reserved, salt=cfg.split_salt, template_set=cfg.template_set
    )
    return tpl.render(fact.slots), tpl.id


class Builder:
    """Runs the stages of a build; ``progress(stage, done, total)`` reports progress."""

    def __init__(self, cfg: BuildConfig, progress: Progress | None = None, teacher=None):
        self.cfg = cfg
        self.progress = progress or (lambda stage, done, total: None)
        self.teacher = teacher
        self.skips = SkipLog()
        self.dropped: Counter = Counter()
        self.timings: dict[str, float] = {}
        self.sources: list[Source] = []

    # -- stages ------------------------------------------------------------------------
    def collect(self) -> list[Fact]:
        """Facts from every configured source, in trust order."""
        facts: list[Fact] = []
        names = list(self.cfg.sources)
        for i, name in enumerate(names):
            self.progress(f"source {name}", i, len(names))
            source = SOURCE_FACTORIES[name](self.cfg)
            if not source.available():
                if self.cfg.require_all_sources:
                    raise SourceMissingError(
                        f"source {name!r} is not installed; run scripts/install_sources.sh "
                        "(or drop it from the build config)"
                    )
                log.warning("source %s not available; skipped", name)
                continue
            start = time.perf_counter()
            got = list(source.facts(self.skips))
            self.timings[f"source_{name}"] = round(time.perf_counter() - start, 2)
            log.info("source %s: %d facts", name, len(got))
            self.sources.append(source)
            facts += got
        self.progress("sources", len(names), len(names))
        return facts

    def _drop(self, facts: list[Fact], keep: Callable[[Fact], str | None]) -> list[Fact]:
        """Keep facts for which ``keep`` returns None; count the reasons of the others."""
        out = []
        for fact in facts:
            reason = keep(fact)
            if reason is None:
                out.append(fact)
            else:
                self.dropped[reason] += 1
        return out

    def filter(self, facts: list[Fact]) -> list[Fact]:
        """Well-formedness, one fact per (subject, qtype), the reject list, domain caps."""
        facts = self._drop(facts, quality.well_formed)
        seen: set[tuple[str, str, str]] = set()

        def first_of_subject(fact: Fact) -> str | None:
            key = (splits.subject_key(fact.subject), fact.qtype, fact.aspect)
            if key in seen:
                return "same_subject_and_type"
            seen.add(key)
            return None

        facts = self._drop(facts, first_of_subject)
        rejects_file = self.cfg.rejects_file
        rejects = load_rejects(REPO_ROOT / rejects_file if rejects_file else None)
        self.n_rejects_listed = len(rejects)
        facts = self._drop(
            facts,
            lambda f: "review_rejected" if rejects.rejects(fact_key(f), f.subject) else None,
        )
        return self._cap_domains(facts)

    def _cap_domains(self, facts: list[Fact]) -> list[Fact]:
        by_domain: dict[str, list[Fact]] = {}
        for fact in facts:
            by_domain.setdefault(fact.domain, []).append(fact)
        keep_ids: set[int] = set()
        for domain, items in by_domain.items():
            cap = self.cfg.max_per_domain.get(domain)
            if cap is None or len(items) <= cap:
                keep_ids.update(id(f) for f in items)
                continue
            protected = [f for f in items if f.source == "glossary"]
            rest = sorted(
                (f for f in items if f.source != "glossary"),
                key=lambda f: splits.unit_hash(
                    fact_key(f),
                    self.cfg.split_salt + ":cap",
                ),
            )
            keep_ids.update(id(f) for f in protected + rest[: max(0, cap - len(protected))])
        return self._drop(facts, lambda f: None if id(f) in keep_ids else "domain_cap")

    def grammar(self, facts: list[Fact]) -> list[Fact]:
        """The grammar gate (``cfg.grammar_gate``): answers repaired or dropped."""
        if not self.cfg.grammar_gate:
            return facts
        from celltext.data.grammar_gate import declared_nouns, gate_facts

        start = time.perf_counter()
        facts, self.grammar_report = gate_facts(facts, self.dropped, declared_nouns(self.cfg))
        self.timings["grammar"] = round(time.perf_counter() - start, 2)
        return facts

    def deduplicate(self, facts: list[Fact]) -> list[Fact]:
        """Exact duplicates (question or answer core) by normalised text."""
        dropped = set(quality.exact_duplicates(facts, lambda f: question_for(f, self.cfg)[0]))
        self.dropped["exact_duplicate"] += len(dropped)
        return [f for i, f in enumerate(facts) if i not in dropped]

    def embed_checks(self, facts: list[Fact]) -> tuple[list[Fact], dict[int, float]]:
        """Near-duplicates and coherence on teacher embeddings (free-text types only)."""
        from celltext.teacher import load_teacher

        teacher = self.teacher or load_teacher(self.cfg.teacher)
        idx = [i for i, f in enumerate(facts) if f.qtype in quality.FREE_TEXT_QTYPES]
        cores = [facts[i].core for i in idx]
        subjects = [facts[i].subject for i in idx]
        texts = list(dict.fromkeys(cores + subjects))
        start = time.perf_counter()
        vecs = self._encode(teacher, texts)
        self.timings["embed"] = round(time.perf_counter() - start, 2)
        self.n_embedded = len(texts)
        row = {t: k for k, t in enumerate(texts)}
        core_v = vecs[[row[c] for c in cores]]  # (M, D)
        subj_v = vecs[[row[s] for s in subjects]]  # (M, D)
        # quantised before the floor and the annotations see it (see celltext.data.quality)
        coh = quality.quantise(quality.coherence(subj_v, core_v))  # (M,)
        bad: set[int] = set()
        by_qtype: dict[str, list[int]] = {}
        for k, i in enumerate(idx):
            by_qtype.setdefault(facts[i].qtype, []).append(k)
        for ks in by_qtype.values():
            near = quality.near_duplicates(
                core_v[ks], [subjects[k] for k in ks], self.cfg.near_duplicate_threshold
            )
            bad.update(idx[ks[k]] for k in near)
        self.dropped["near_duplicate"] += len(bad)
        # The teacher only knows what ordinary words mean: "deft" vs its gloss is judged,
        # an opaque product name such as "DRUCO I" is not (its cosine is noise).
        judged = [english_ratio(subjects[k]) == 1.0 for k in range(len(idx))]
        incoherent = {
            idx[k] for k in range(len(idx)) if judged[k] and coh[k] < self.cfg.coherence_floor
        }
        incoherent -= bad
        self.dropped["incoherent"] += len(incoherent)
        self.coherence_scores = coh
        scores = {idx[k]: float(coh[k]) for k in range(len(idx))}
        kept, kept_scores = [], {}
        for i, fact in enumerate(facts):
            if i in bad or i in incoherent:
                continue
            if i in scores:
                kept_scores[len(kept)] = scores[i]
            kept.append(fact)
        return kept, kept_scores

    def _encode(self, teacher, texts: list[str]) -> np.ndarray:
        chunk = 1024
        parts = []
        for start in range(0, len(texts), chunk):
            self.progress("embedding", start, len(texts))
            parts.append(teacher.encode(texts[start : start + chunk], self.cfg.embed_batch_size))
        self.progress("embedding", len(texts), len(texts))
        return np.concatenate(parts) if parts else np.zeros((0, teacher.dim), np.float32)

    def make_pairs(self, facts: list[Fact], coh: dict[int, float]) -> tuple[list, list]:
        """QA pairs with splits and templates, and their annotations."""
        cfg = self.cfg
        pairs: list[QAPair] = []
        notes: list[dict[str, Any]] = []
        for i, fact in enumerate(facts):
            fid = fact_key(fact)
            split = splits.base_split(
                fact.subject, fid, cfg.unseen_fraction, cfg.val_fraction, cfg.split_salt
            )
            variants = [(split, False, fid)]
            if split == "train" and splits.wants_paraphrase(
                fid, cfg.paraphrase_fraction, cfg.split_salt
            ):
                variants.append(("test_paraphrase", True, fid + "-p"))
            for split_name, reserved, pid in variants:
                question, tid = question_for(fact, cfg, reserved=reserved)
                pairs.append(
                    QAPair(
                        id=pid,
                        question=question,
                        answer=fact.answer,
                        domain=fact.domain,
                        subject=fact.subject,
                        qtype=fact.qtype,
                        template_id=tid,
                        source=fact.source,
                        split=split_name,
                    )
                )
                notes.append(
                    {
                        "id": pid,
                        "complexity": quality.complexity(fact.answer),
                        "coherence": coh.get(i),  # already quantised
                        "answer_tokens": token_count(fact.answer),
                    }
                )
        return pairs, notes

    def extra_texts(self, pairs: list[QAPair]) -> list[str]:
        """Clean extra sentences from the sources, not equal to any answer, capped."""
        answers = {normalise_for_match(p.answer) for p in pairs}
        seen: set[str] = set()
        texts = []
        for source in self.sources:
            for text in source.extra_texts():
                key = normalise_for_match(text)
                if key in seen or key in answers or not usable_extra(text):
                    continue
                if token_count(text) > 64:
                    continue
                seen.add(key)
                texts.append(text)
        salt = self.cfg.split_salt + ":extra"
        texts.sort(key=lambda t: splits.unit_hash(t, salt))
        return texts[: self.cfg.max_extra_texts]

    # -- all together ------------------------------------------------------------------
    def run(self, out_dir: Path | None = None) -> BuildResult:
        """Build and write the release; returns it with the build report."""
        start = time.perf_counter()
        facts = self.collect()
        n_collected = len(facts)
        facts = self.filter(facts)
        facts = self.grammar(facts)
        facts = self.deduplicate(facts)
        facts, coh = self.embed_checks(facts)
        pairs, notes = self.make_pairs(facts, coh)
        extra = self.extra_texts(pairs)
        self.timings["total"] = round(time.perf_counter() - start, 2)
        report = {
            "facts_collected": n_collected,
            "facts_kept": len(facts),
            "pairs": len(pairs),
            "skipped_source_entries": self.skips.to_dict(),
            "skipped_source_entries_total": self.skips.total(),
            "dropped_facts": dict(sorted(self.dropped.items())),
            "reject_list_entries": getattr(self, "n_rejects_listed", 0),
            "texts_embedded": getattr(self, "n_embedded", 0),
            "coherence": quality.summarise(v for v in coh.values()),
            "complexity": quality.summarise(n["complexity"] for n in notes),
            "extra_texts": len(extra),
            **({"grammar": self.grammar_report} if hasattr(self, "grammar_report") else {}),
            "timings_s": self.timings,
        }
        out = Path(out_dir) if out_dir else releases_dir() / self.cfg.version
        generator = {
            "name": "celltext data build",
            "celltext_version": __version__,
            "config": self.cfg.to_dict(),
            "config_hash": self.cfg.config_hash(),
            "templates": sorted(templates.by_id(self.cfg.template_set)),
            "reserved_templates": sorted(templates.reserved_ids(self.cfg.template_set)),
        }
        sources = [s.info().to_dict() for s in self.sources]
        write_release(
            pairs,
            out,
            self.cfg.version,
            extra_texts=extra,
            annotations=notes,
            generator=generator,
            sources=sources,
            report=report,
        )
        return BuildResult(out, pairs, report)


def build_release(
    cfg: BuildConfig | None = None,
    out_dir: str | Path | None = None,
    progress: Progress | None = None,
    teacher=None,
) -> BuildResult:
    """Build a release with ``cfg`` (defaults: release v1) into ``out_dir``."""
    cfg = cfg or BuildConfig()
    return Builder(cfg, progress, teacher).run(Path(out_dir) if out_dir else None)
