"""Module 1: the frozen teacher sentence encoder and its on-disk embedding cache."""

from celltext.teacher.cache import CacheCorruptError, EmbeddingCache, text_key
from celltext.teacher.encoder import TEACHERS, Teacher, is_installed, load_teacher
from celltext.teacher.install import TeacherNotInstalledError, install_mpnet

__all__ = [
    "TEACHERS",
    "CacheCorruptError",
    "EmbeddingCache",
    "Teacher",
    "TeacherNotInstalledError",
    "install_mpnet",
    "is_installed",
    "load_teacher",
    "text_key",
]
