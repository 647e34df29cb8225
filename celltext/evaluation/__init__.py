"""Evaluation: metrics (one definition everywhere), the retrieval baseline, ``celltext eval``,
``celltext bench``, the ablation study and the performance report.

Modules: :mod:`~celltext.evaluation.metrics`, :mod:`~celltext.evaluation.baselines`,
:mod:`~celltext.evaluation.systems`, :mod:`~celltext.evaluation.evaluate`,
:mod:`~celltext.evaluation.bench`, :mod:`~celltext.evaluation.ablation`,
:mod:`~celltext.evaluation.ablation_report`, :mod:`~celltext.evaluation.report`.
"""
