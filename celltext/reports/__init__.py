"""Writers of the project's documents: the generated sections of
``docs/PERFORMANCE_ANALYSIS.md`` and the README, and their figures.

They read result dicts (the JSON that ``celltext eval``/``bench``/``ablate`` and the
scripts in ``benchmarks/`` write) and never measure anything themselves, so a section can
be redrawn from committed results without rerunning a measurement.

Modules: :mod:`~celltext.reports.markdown` (marked sections, tables, number formatting),
:mod:`~celltext.reports.plots` (scatter and line plots), and one module per generated
section: :mod:`~celltext.reports.ablation`, :mod:`~celltext.reports.scaling`,
:mod:`~celltext.reports.shipped`.
"""
