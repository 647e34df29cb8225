"""The source each name in ``BuildConfig.sources`` stands for, made from the build config.

A factory takes the :class:`~celltext.data.build.BuildConfig` (typed ``Any`` here: the
build imports this table, not the other way round) and returns the
:class:`~celltext.data.sources.base.Source`; sources are imported only when a build asks for
them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celltext.data.sources.base import Source


def _glossary(cfg: Any) -> Source:
    from celltext.data.sources.glossary import GLOSSARY_DIR, GlossarySource

    folder, nouns = cfg.glossary_dir or GLOSSARY_DIR, cfg.glossary_top_level_nouns
    return GlossarySource(folder, cfg.glossary_subdirs, nouns)


def _docstrings(cfg: Any) -> Source:
    from celltext.data.sources.docstrings import DocstringSource

    return DocstringSource(max_per_module=cfg.docstrings_max_per_module)


def _dictd(cls_path: str) -> Callable[[Any], Source]:
    def make(cfg: Any) -> Source:
        module, cls = cls_path.rsplit(".", 1)
        mod = __import__(f"celltext.data.sources.{module}", fromlist=[cls])
        return getattr(mod, cls)(cfg.dictd_dir, senses=cfg.senses)

    return make


def _wordnet(cfg: Any) -> Source:
    from celltext.data.sources.wordnet import WordNetSource

    return WordNetSource(cfg.wordnet_max_general, cfg.wordnet_max_examples, senses=cfg.senses)


SOURCE_FACTORIES: dict[str, Callable[[Any], Source]] = {
    "glossary": _glossary,
    "docstrings": _docstrings,
    "foldoc": _dictd("foldoc.FoldocSource"),
    "wordnet": _wordnet,
    "elements": _dictd("elements.ElementsSource"),
    "jargon": _dictd("jargon.JargonSource"),
    "vera": _dictd("vera.VeraSource"),
}
