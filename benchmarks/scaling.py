"""Scaling analysis: cost and quality as the lattice grows and as the training set grows.

Usage::

    .venv/bin/python benchmarks/scaling.py                        # tiny budget, ~1 min, no docs
    .venv/bin/python benchmarks/scaling.py --budget full \
        --doc docs/PERFORMANCE_ANALYSIS.md --figures docs/figures   # ~10-15 min, 2-core CPU

The same command as ``python -m celltext.experiments.scaling`` (see that module for what
it measures); the ``scaling`` section is written by :mod:`celltext.reports.scaling`.
"""

from __future__ import annotations

from celltext.experiments.scaling import main

if __name__ == "__main__":
    main(program=".venv/bin/python benchmarks/scaling.py")
