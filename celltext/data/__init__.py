"""Data: offline sources -> quality-controlled, versioned question-answer releases.

The schema (``celltext.data.schema``) and the release reader (``celltext.data.release``)
are what the rest of celltext uses; the builder (``celltext.data.build``) writes releases.
"""

from celltext.data.release import Release, ReleaseIntegrityError, load_release, write_release
from celltext.data.schema import DOMAINS, QTYPES, SPLITS, Fact, QAPair

__all__ = [
    "DOMAINS",
    "QTYPES",
    "SPLITS",
    "Fact",
    "QAPair",
    "Release",
    "ReleaseIntegrityError",
    "load_release",
    "write_release",
]
