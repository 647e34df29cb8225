"""Reader for dictd databases: ``NAME.index`` (``headword<TAB>b64offset<TAB>b64length``) and
``NAME.dict.dz`` (gzip-compatible dictzip holding the entries back to back), and
:class:`DictdSource`, the base of the sources read from one such database.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from celltext.data.sources.base import SkipLog, Source
from celltext.data.sources.senses import check_senses

T = TypeVar("T")

DEFAULT_DICTD_DIR = Path("/usr/share/dictd")
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_VALUE = {c: i for i, c in enumerate(_B64)}


def decode_b64_number(text: str) -> int:
    """dictd's base-64 number encoding (most significant digit first)."""
    if not text:
        raise ValueError("empty number")
    value = 0
    for ch in text:
        value = value * 64 + _B64_VALUE[ch]  # KeyError on a bad digit
    return value


def encode_b64_number(value: int) -> str:
    """Inverse of :func:`decode_b64_number` (used to write test fixtures)."""
    digits = []
    while True:
        value, rem = divmod(value, 64)
        digits.append(_B64[rem])
        if value == 0:
            return "".join(reversed(digits))


@dataclass(frozen=True)
class DictdEntry:
    """One entry: all headwords that point at it, and its raw text."""

    headwords: tuple[str, ...]
    text: str
    offset: int


class DictdDatabase:
    """A dictd database on disk; entries are read in file order, each once."""

    def __init__(self, name: str, directory: str | Path = DEFAULT_DICTD_DIR):
        self.name = name
        self.directory = Path(directory)
        self.index_path = self.directory / f"{name}.index"
        self.dict_path = self.directory / f"{name}.dict.dz"
        if not self.dict_path.exists() and (self.directory / f"{name}.dict").exists():
            self.dict_path = self.directory / f"{name}.dict"

    def available(self) -> bool:
        """Both files are present."""
        return self.index_path.exists() and self.dict_path.exists()

    def _data(self) -> bytes:
        if self.dict_path.suffix == ".dz":
            with gzip.open(self.dict_path, "rb") as fh:
                return fh.read()
        return self.dict_path.read_bytes()

    def entries(self, skips: SkipLog, source: str | None = None) -> Iterator[DictdEntry]:
        """Yield entries; malformed index lines or out-of-range offsets are counted in ``skips``."""
        source = source or self.name
        data = self._data()
        by_offset: dict[tuple[int, int], list[str]] = {}
        with open(self.index_path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                line = line.rstrip("\n")
                if not line.strip():
                    continue
                parts = line.split("\t")
                if len(parts) != 3:
                    skips.skip(source, "malformed_index_line", line)
                    continue
                head, b64_off, b64_len = parts
                try:
                    offset, length = decode_b64_number(b64_off), decode_b64_number(b64_len)
                except (KeyError, ValueError):
                    skips.skip(source, "malformed_index_line", line)
                    continue
                if offset + length > len(data) or length == 0:
                    skips.skip(source, "offset_out_of_range", line)
                    continue
                if head.startswith("00database") or head.startswith("00-database"):
                    continue
                by_offset.setdefault((offset, length), []).append(head)
        for (offset, length), heads in sorted(by_offset.items()):
            raw = data[offset : offset + length]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                skips.skip(source, "bad_encoding", heads[0])
                continue
            yield DictdEntry(tuple(heads), text, offset)


class DictdSource(Source):
    """A source read from the dictd database called ``name`` in ``directory``.

    Subclasses supply ``name``, ``info()`` and ``facts()``; sentences they append to
    ``self._extra`` while yielding facts are returned by :meth:`extra_texts`.
    ``senses="qualified"`` names the sense of an entry whose word has another everyday
    meaning (:meth:`sense_subject`); ``"single"`` (release v1) keeps the headword.
    """

    def __init__(
        self,
        directory: str | Path = DEFAULT_DICTD_DIR,
        senses: str = "single",
        technical: Mapping[str, str] | None = None,
    ):
        self.db = DictdDatabase(self.name, directory)
        self._extra: list[str] = []
        self.senses = check_senses(senses)
        self.technical = technical  # None: senses.technical_terms()

    def available(self) -> bool:
        return self.db.available()

    def parsed_entries(self, skips: SkipLog, parse: Callable[[str], T | None]) -> Iterator[T]:
        """Each entry's text run through ``parse``; entries it rejects (None) are counted."""
        for entry in self.db.entries(skips, self.name):
            parsed = parse(entry.text)
            if parsed is None:
                skips.skip(self.name, "malformed_entry", entry.headwords[0])
                continue
            yield parsed

    def sense_subject(self, word: str, gloss: str, qualifier: str, **kw) -> str:
        """The subject for this entry's sense of ``word`` (see
        :meth:`celltext.data.sources.senses.SensePlanner.subject_for`); ``word`` itself
        with ``senses="single"``."""
        if self.senses == "single":
            return word
        from celltext.data.sources.wordnet import shared_planner

        return shared_planner(self.technical).subject_for(word, gloss, qualifier, **kw)

    def extra_texts(self) -> Iterator[str]:
        return iter(self._extra)
