"""Assigning one of the nine domains: from source tags first, then from keywords.

Source tags win (FOLDOC's ``<artificial intelligence>``, a WordNet topic domain, the
package a docstring comes from, the glossary's ``domain:``); untagged technical entries
(VERA acronyms, Jargon, untagged FOLDOC) fall back to :func:`domain_from_keywords`.
"""

from __future__ import annotations

import re

# FOLDOC subject tags -> domain (anything unlisted is computing: programming_algorithms).
FOLDOC_TAGS: dict[str, str] = {
    "artificial intelligence": "ai_ml_fundamentals",
    "robotics": "ai_ml_fundamentals",
    "information science": "ai_ml_fundamentals",
    "mathematics": "math_statistics",
    "statistics": "math_statistics",
    "probability": "math_statistics",
    "logic": "math_statistics",
    "theory": "math_statistics",
    "complexity": "math_statistics",
    "computability": "math_statistics",
    "topology": "math_statistics",
    "reduction": "math_statistics",
    "cryptography": "math_statistics",
    "graphics": "computer_vision",
    "image": "computer_vision",
    "video": "computer_vision",
    "virtual reality": "computer_vision",
    "human language": "nlp_llm",
    "grammar": "nlp_llm",
    "spelling": "nlp_llm",
    "testing": "mlops_engineering",
    "benchmark": "mlops_engineering",
    "system management": "mlops_engineering",
    "parallel": "mlops_engineering",
    "documentation": "mlops_engineering",
    "open source": "mlops_engineering",
    "software": "mlops_engineering",
    "company": "general_knowledge",
    "person": "general_knowledge",
    "humour": "general_knowledge",
    "history": "general_knowledge",
    "games": "general_knowledge",
    "music": "general_knowledge",
    "business": "general_knowledge",
    "legal": "general_knowledge",
    "publication": "general_knowledge",
    "education": "general_knowledge",
    "recreation": "general_knowledge",
    "medical": "general_knowledge",
    "philosophy": "general_knowledge",
    "body": "general_knowledge",
}

# Ordered: the first domain whose keywords match wins (specific before general).
_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "reinforcement_learning",
        ("reinforcement learning", "markov decision", "q-learning", "policy gradient", "reward"),
    ),
    (
        "deep_learning",
        ("neural net", "deep learning", "perceptron", "backpropagation", "convolutional"),
    ),
    (
        "computer_vision",
        ("image", "pixel", "computer vision", "video", "camera", "optical character", "bitmap"),
    ),
    (
        "nlp_llm",
        ("natural language", "language model", "linguistic", "speech", "text-to-speech", "lexic"),
    ),
    (
        "ai_ml_fundamentals",
        ("artificial intelligence", "machine learning", "expert system", "knowledge base"),
    ),
    (
        "mlops_engineering",
        ("version control", "continuous integration", "deployment", "monitoring", "benchmark"),
    ),
    ("math_statistics", ("theorem", "statistic", "probability", "algebra", "mathemati")),
)
_KEYWORD_RES = [
    (domain, re.compile(r"\b(?:" + "|".join(re.escape(k) for k in words) + r")", re.I))
    for domain, words in _KEYWORDS
]


_ML_ONLY = ("reinforcement_learning", "deep_learning", "ai_ml_fundamentals")


def domain_from_keywords(text: str, default: str, only: tuple[str, ...] | None = None) -> str:
    """The first domain (of ``only``, if given) whose keywords occur in ``text``, or ``default``."""
    for domain, pattern in _KEYWORD_RES:
        if (only is None or domain in only) and pattern.search(text):
            return domain
    return default


def domain_from_foldoc_tags(tags: list[str], text: str) -> str:
    """FOLDOC tags decide; untagged or unmapped entries use keywords, then computing."""
    for tag in tags:
        if tag.lower() in FOLDOC_TAGS:
            return FOLDOC_TAGS[tag.lower()]
    # A tagged computing entry that mentions "video" is still about computing; only the
    # unmistakable ML keywords move it.
    only = _ML_ONLY if tags else None
    return domain_from_keywords(text, "programming_algorithms", only)
