"""Experiments that train models and measure them: the ablation study (``celltext ablate``,
:mod:`~celltext.experiments.ablation`) and the scaling analysis
(:mod:`~celltext.experiments.scaling`).

They train through :mod:`celltext.training`, evaluate through :mod:`celltext.evaluation`
and hand their report dicts to the document writers in :mod:`celltext.reports`.
"""
