"""What every data source provides, and the counter of skipped entries."""

from __future__ import annotations

import abc
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from celltext.data.schema import Fact


@dataclass
class SkipLog:
    """Counts of source entries skipped, by ``(source, reason)``, with a few examples each."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    max_examples: int = 3

    def skip(self, source: str, reason: str, example: str = "") -> None:
        """Record one skipped entry."""
        key = f"{source}:{reason}"
        self.counts[key] += 1
        shown = self.examples.setdefault(key, [])
        if example and len(shown) < self.max_examples:
            shown.append(example[:120])

    def total(self, source: str | None = None) -> int:
        """Entries skipped (by one source, or by all)."""
        return sum(
            n for k, n in self.counts.items() if source is None or k.startswith(source + ":")
        )

    def to_dict(self) -> dict[str, dict]:
        """JSON form: ``{"source:reason": {"count": n, "examples": [...]}}``, sorted."""
        return {
            k: {"count": self.counts[k], "examples": self.examples.get(k, [])}
            for k in sorted(self.counts)
        }


@dataclass(frozen=True)
class SourceInfo:
    """Provenance of a source, recorded in the release manifest and the dataset card."""

    name: str
    title: str
    version: str
    licence: str
    url: str
    attribution: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "title": self.title,
            "version": self.version,
            "licence": self.licence,
            "url": self.url,
            "attribution": self.attribution,
        }


class Source(abc.ABC):
    """A provider of :class:`Fact` objects (and of extra clean sentences)."""

    name: str = "source"

    @abc.abstractmethod
    def info(self) -> SourceInfo:
        """Title, version, licence and attribution."""

    def available(self) -> bool:
        """Whether the source's files are installed here."""
        return True

    @abc.abstractmethod
    def facts(self, skips: SkipLog) -> Iterator[Fact]:
        """Yield facts; malformed or unusable entries are recorded in ``skips``."""

    def extra_texts(self) -> Iterator[str]:
        """Clean sentences from this source that are not used as answers (optional)."""
        return iter(())
