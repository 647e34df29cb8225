"""Evaluation: the retrieval baseline (:class:`~celltext.evaluation.systems.RetrievalSystem`
over :class:`celltext.index.RetrievalIndex`), ``celltext eval``, ``celltext bench``, the ablation
study and the performance report. The metrics (one definition everywhere: training
validation, evaluation and the serving quality check) are :mod:`celltext.metrics`.

Modules: :mod:`~celltext.evaluation.systems`, :mod:`~celltext.evaluation.evaluate`,
:mod:`~celltext.evaluation.bench`, :mod:`~celltext.evaluation.ablation`,
:mod:`~celltext.evaluation.ablation_report`, :mod:`~celltext.evaluation.report`.
"""
