"""The honest baseline: nearest-neighbour retrieval over the training questions.

``RetrievalBaseline`` embeds the question with the teacher, finds the training question
with the highest cosine, and returns that question's answer. It has no trainable
parameters and is what a sceptic would ship; every learned model is compared with it on
the same splits, metrics and machine (``celltext eval --model retrieval``,
``celltext bench``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

RETRIEVAL_REF = "retrieval"


class RetrievalBaseline:
    """Teacher embedding of the question -> nearest training question -> its answer.

    Shapes: ``N`` training pairs, ``B`` queries, ``D`` teacher dim.
    """

    name = RETRIEVAL_REF

    def __init__(
        self,
        questions: Sequence[str],
        answers: Sequence[str],
        teacher: Any,
        progress: bool | None = None,
    ):
        if len(questions) != len(answers) or not questions:
            raise ValueError("retrieval baseline needs equally many (>0) questions and answers")
        self.teacher = teacher
        if progress is None:  # a progress bar (stderr) when embedding takes a while
            progress = len(questions) > 5000
        self.questions = list(questions)
        self.answers = list(answers)
        self.question_embs = np.asarray(
            teacher.encode(self.questions, progress=progress), dtype=np.float32
        )  # (N, D)
        self.answer_embs = np.asarray(
            teacher.encode(self.answers, progress=progress), dtype=np.float32
        )  # (N, D)

    @classmethod
    def from_pairs(cls, pairs: Sequence[Any], teacher: Any, progress: bool | None = None):
        """Index the (training) ``pairs``: objects with ``question`` and ``answer``."""
        return cls([p.question for p in pairs], [p.answer for p in pairs], teacher, progress)

    @classmethod
    def from_release(cls, release: Any, teacher: Any = None, progress: bool | None = None):
        """Index the ``train`` split of a :class:`celltext.data.release.Release`."""
        if teacher is None:
            from celltext.teacher import load_teacher

            teacher = load_teacher()
        return cls.from_pairs(release.pairs("train"), teacher, progress)

    @property
    def size(self) -> int:
        """Number of indexed training pairs."""
        return len(self.questions)

    def search_embeddings(self, q_embs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest training index and its cosine for each row of ``q_embs`` (B, D)."""
        sims = np.asarray(q_embs, dtype=np.float32) @ self.question_embs.T  # (B, N)
        idx = np.argmax(sims, axis=1)  # (B,) ties -> lowest index: deterministic
        return idx, sims[np.arange(len(idx)), idx]

    def retrieve(
        self, questions: Sequence[str], cache: bool = True
    ) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Answers, cosines (B,) and the retrieved answers' teacher embeddings (B, D)."""
        if not questions:
            return [], np.zeros(0, np.float32), np.zeros((0, self.answer_embs.shape[1]))
        q = np.asarray(self.teacher.encode(list(questions), cache=cache), dtype=np.float32)
        idx, score = self.search_embeddings(q)
        return [self.answers[i] for i in idx], score, self.answer_embs[idx]

    def answer(self, questions: Sequence[str]) -> list[str]:
        """The retrieved answer for each question."""
        return self.retrieve(questions)[0]
