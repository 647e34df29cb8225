"""Plots of a release for the dataset card: domain distribution and answer lengths."""

from __future__ import annotations

from pathlib import Path

from celltext.data.release import Release
from celltext.data.schema import DOMAINS, SPLITS
from celltext.paths import REPO_ROOT

FIGURES_DIR = REPO_ROOT / "docs" / "figures"


def make_report(release: Release, out_dir: str | Path | None = None) -> list[Path]:
    """Write ``data_domains.png`` and ``data_answer_length.png``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from celltext.data.clean import token_count

    out = Path(out_dir) if out_dir else FIGURES_DIR
    out.mkdir(parents=True, exist_ok=True)
    pairs = release.pairs()

    fig, ax = plt.subplots(figsize=(10, 4.5))
    left = np.zeros(len(DOMAINS))
    for split in SPLITS:
        counts = np.array([sum(p.domain == d and p.split == split for p in pairs) for d in DOMAINS])
        ax.barh(DOMAINS, counts, left=left, label=split)
        left += counts
    for i, total in enumerate(left):
        ax.text(total, i, f" {int(total)}", va="center", fontsize=8)
    ax.set_xlabel("pairs")
    ax.set_title(f"celltext release {release.version}: pairs per domain and split")
    ax.invert_yaxis()
    ax.set_xlim(0, left.max() * 1.12)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    domains_png = out / "data_domains.png"
    fig.savefig(domains_png, dpi=120)
    plt.close(fig)

    lengths = np.array([token_count(p.answer) for p in pairs])
    words = np.array([len(p.answer.split()) for p in pairs])
    fig, ax = plt.subplots(figsize=(8, 4))
    bins = np.arange(0, max(50, int(lengths.max()) + 2))
    ax.hist(lengths, bins=bins, alpha=0.7, label="tokens (teacher WordPiece)")
    ax.hist(words, bins=bins, alpha=0.5, label="words")
    ax.axvline(48, color="k", linestyle="--", linewidth=1, label="48-token budget")
    ax.set_xlabel("answer length")
    ax.set_ylabel("pairs")
    ax.set_title(
        f"answer length, release {release.version} (median {int(np.median(lengths))} tokens)"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    length_png = out / "data_answer_length.png"
    fig.savefig(length_png, dpi=120)
    plt.close(fig)
    return [domains_png, length_png]
