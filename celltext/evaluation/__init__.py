"""Evaluation: systems, scoring and ``celltext eval``.

- :mod:`~celltext.evaluation.systems`: the :class:`~celltext.evaluation.systems.System`
  protocol and its four implementations (retrieval baseline over
  :class:`celltext.index.RetrievalIndex`, generative path, retrieve-and-edit decoder,
  production predictor);
- :mod:`~celltext.evaluation.scoring`: per-item scores, aggregates, calibration and answer
  ranking over :mod:`celltext.metrics` (one definition everywhere: training validation,
  evaluation and the serving quality check);
- :mod:`~celltext.evaluation.evaluate`: the evaluations and ``run_eval``;
- the held-out sets outside the release are read by :mod:`celltext.data.heldout`.

Benchmarks (``celltext bench``) are :mod:`celltext.benchmarking`; experiments that train
models (the ablation, the scaling analysis) are :mod:`celltext.experiments`; the writers
of the generated documents are :mod:`celltext.reports`.
"""
