"""Lattice activity of the shipped core for a few questions, as z-slices (one PNG).

Usage::

    .venv/bin/python benchmarks/lattice_activity.py --out docs/figures/lattice_activity.png
    .venv/bin/python benchmarks/lattice_activity.py --out a.png -q "What is a GPU?" -q "..."

Loads the model the way every command does (``resolve_model_ref`` +
``load_checkpoint``), embeds each question with the checkpoint's teacher and runs the core
with ``return_activity=True`` (the core's own hook on its lattice states, the one the web
page's activity view uses): the norm of every cell's state after every lattice step,
(B, T, X, Y, Z). Each row of the figure is one question; its columns are the z-slices of
the last step, on one colour scale for the whole figure (each labelled with its own
min-max), and a last panel with the mean activity per step. Writes ``--out`` only;
prints the per-step means and, per z-slice of the last step, its mean and how much its
cells differ between the questions (the mean over cells of the standard deviation over
questions) as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

QUESTIONS = (
    "What is a convolutional neural network?",
    "What does GPU stand for?",
    "What is the atomic number of iron?",
)


def lattice_states(ref: str | None, questions: list[str]) -> np.ndarray:
    """Cell activity (B, T, X, Y, Z) of the core of ``ref`` for ``questions``."""
    import torch

    from celltext.inference.activity import supports_activity
    from celltext.registry import resolve_model_ref
    from celltext.registry.checkpoint import load_checkpoint
    from celltext.teacher import load_teacher

    ckpt = load_checkpoint(resolve_model_ref(ref))
    core = ckpt.model.core.eval()
    if not supports_activity(core):
        raise SystemExit(f"the core of {ref or 'the default model'} has no lattice activity")
    emb = load_teacher(ckpt.model.teacher_id).encode(questions, cache=False)  # (B, D)
    with torch.inference_mode():
        _, activity = core(torch.as_tensor(np.asarray(emb, np.float32)), return_activity=True)
    act = activity.float().numpy()
    if act.ndim != 5:
        raise SystemExit(f"expected activity (B, T, X, Y, Z), got shape {act.shape}")
    return act


def draw(act: np.ndarray, questions: list[str], out: Path, title: str) -> Path:
    """Rows: questions; columns: z-slices of the last step, then the mean per step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b, t, _, _, z = act.shape
    last = act[:, -1]  # (B, X, Y, Z)
    vmax = float(last.max())
    fig, axes = plt.subplots(b, z + 1, figsize=(1.9 * (z + 1) + 0.8, 2.0 * b + 0.6),
                             dpi=100, squeeze=False)  # fmt: skip
    for i, question in enumerate(questions):
        for k in range(z):
            ax = axes[i][k]
            image = ax.imshow(
                last[i, :, :, k].T, origin="lower", cmap="viridis", vmin=0.0, vmax=vmax
            )  # fmt: skip  (rows y, columns x)
            ax.set_xticks([])
            ax.set_yticks([])
            # the range of this slice: deep slices can be flat on the shared colour scale
            ax.set_xlabel(f"{last[i, :, :, k].min():.3f}-{last[i, :, :, k].max():.3f}",
                          fontsize=7)  # fmt: skip
            if i == 0:
                ax.set_title(f"z = {k}", fontsize=9)
        axes[i][0].set_ylabel(_wrap(question), fontsize=8, rotation=0, ha="right", va="center")
        steps = axes[i][z]
        steps.plot(range(1, t + 1), act[i].reshape(t, -1).mean(axis=1), marker="o", ms=3)
        steps.set_xticks(range(1, t + 1))
        steps.tick_params(labelsize=7)
        steps.grid(True, alpha=0.3)
        if i == 0:
            steps.set_title("mean per step", fontsize=9)
    axes[-1][z].set_xlabel("lattice step", fontsize=8)
    fig.colorbar(image, ax=axes[:, :z].ravel().tolist(), shrink=0.8, label="cell state norm")
    fig.suptitle(title, fontsize=10)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)
    return out


def _wrap(text: str, width: int = 22) -> str:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="Model ref (default: models/default).")
    parser.add_argument("-q", "--question", action="append", default=None, help="Repeatable.")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write.")
    args = parser.parse_args(argv)
    questions = args.question or list(QUESTIONS)
    act = lattice_states(args.model, questions)
    _, t, x, y, z = act.shape
    title = (f"Lattice activity of {args.model or 'models/default'}'s core "
             f"({x}x{y}x{z} cells, step {t} of {t})")  # fmt: skip
    print(f"wrote {draw(act, questions, args.out, title)}", file=sys.stderr)
    means = {q: np.round(a.reshape(t, -1).mean(axis=1).astype(float), 4).tolist() for q, a in zip(
        questions, act, strict=True)}  # fmt: skip
    last = act[:, -1]  # (B, X, Y, Z)
    spread = {
        f"z={k}": {
            "mean": round(float(last[..., k].mean()), 4),
            # how much a slice's cells differ between the questions (0: question-blind)
            "std_over_questions": round(float(last[..., k].std(axis=0).mean()), 5),
        }
        for k in range(z)
    }
    print(json.dumps({"shape": list(act.shape), "mean_per_step": means,
                      "last_step_per_slice": spread}, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
