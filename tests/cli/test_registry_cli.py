"""``celltext registry``: cheap to start (no torch), and ``compare`` readable as rows."""

from __future__ import annotations

import subprocess
import sys

from rich.console import Console

from celltext.cli.registry import compare_table, headline_metrics


def test_registry_commands_do_not_import_torch():
    code = (
        "import sys; import celltext.cli, celltext.registry.models, celltext.registry; "
        "celltext.registry.models.ModelRegistry; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_headline_metrics_are_the_final_models():
    keys = ["core/train/loss", "core/val/cosine", "test/bleu", "val/cosine", "val/token_acc"]
    assert headline_metrics(keys) == ["test/bleu", "val/cosine", "val/token_acc"]
    assert headline_metrics(["core/val/cosine"]) == ["core/val/cosine"]


def test_compare_table_has_a_row_per_metric_and_a_column_per_version():
    result = {
        "name": "celltext",
        "metrics": ["val/cosine", "val/perplexity"],
        "versions": [
            {"version": 2, "aliases": ["champion"], "dataset": "v1", "preset": "quick",
             "git_commit": "abc", "val/cosine": 0.71, "val/perplexity": 9.0},
            {"version": 1, "aliases": [], "dataset": "v1", "preset": "tiny",
             "git_commit": "def", "val/cosine": 0.52, "val/perplexity": 7.5},
        ],
    }  # fmt: skip
    console = Console(width=60, record=True, color_system=None)
    console.print(compare_table(result, result["metrics"]))
    text = console.export_text(clear=False)
    lines = {line.split()[1]: line for line in text.splitlines() if line.startswith("│ ")}
    assert "v2" in text.splitlines()[2] and "v1" in text.splitlines()[2]
    assert "0.7100" in lines["val/cosine"] and "0.5200" in lines["val/cosine"]
    assert "champion" in lines["aliases"] and "quick" in lines["preset"]
    segments = console.export_text(styles=True)
    assert "\x1b[1m0.7100" in segments and "\x1b[1m7.5000" in segments  # best is bold
