"""Writing results into markdown documents: marked sections, tables, number formatting.

Each generating command owns one section of a document, delimited by
``<!-- BEGIN name -->`` / ``<!-- END name -->``; re-running the command replaces only its
own section, so the ablation, the scaling analysis and the shipped-model report can be
rerun independently and every number in the document still comes from a command (each
section starts with the exact command line that wrote it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DOC_TITLE = "# Performance analysis\n"


def update_section(doc: Path, name: str, body: str) -> Path:
    """Replace (or append) the section ``name`` of the markdown file ``doc``."""
    doc = Path(doc)
    doc.parent.mkdir(parents=True, exist_ok=True)
    text = doc.read_text() if doc.exists() else DOC_TITLE
    block = f"<!-- BEGIN {name} -->\n{body.rstrip()}\n<!-- END {name} -->"
    pattern = re.compile(
        rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->", re.DOTALL
    )
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text if text.endswith("\n") else text + "\n")
    return doc


def read_section(doc: Path, name: str) -> str | None:
    """The body of section ``name`` of ``doc`` (None if absent)."""
    if not Path(doc).exists():
        return None
    m = re.search(
        rf"<!-- BEGIN {re.escape(name)} -->\n(.*?)\n<!-- END {re.escape(name)} -->",
        Path(doc).read_text(),
        re.DOTALL,
    )
    return m.group(1) if m else None


def fmt(value: Any, digits: int = 3) -> str:
    """A table cell: floats rounded, ints with thousands separators, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 3) -> str:
    """A GitHub markdown table (numbers right-aligned)."""
    align = ["---" if i == 0 else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    for row in rows:
        lines.append("| " + " | ".join(fmt(v, digits) for v in row) + " |")
    return "\n".join(lines)
