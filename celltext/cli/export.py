"""``celltext export onnx``: ONNX files for the torch-free path, with a parity report."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from celltext.cli.common import JSON_OPTION, emit_json, err_console, fail
from celltext.inference.export_files import SERVED_TEACHER
from celltext.paths import DEFAULT_RELEASE

export_app = typer.Typer(help="Export models to other runtimes.", no_args_is_help=True)


@export_app.command("onnx")
def onnx(
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        file_okay=False,
        help="Output directory (default: the model's export in the cache, which `celltext ask`, "
        "`serve` and `demo` then use instead of PyTorch).",
    ),  # fmt: skip
    model: str | None = typer.Option(None, "--model", "-m", help="Model ref (default: shipped)."),
    teacher: str = typer.Option(
        SERVED_TEACHER,
        "--teacher",
        help="Teacher precision: int8 (what `ask`/`serve` use: its own phrase bank and "
        "selector) or float32 (answers as PyTorch does).",
    ),  # fmt: skip
    int8: bool = typer.Option(
        False, "--int8", help="Also write a dynamic-int8 variant of every graph (<out>-int8)."
    ),
    parity: bool = typer.Option(True, "--parity/--no-parity", help="Compare ORT with PyTorch."),
    split: str = typer.Option(
        "test_paraphrase", "--split", help="Release split for the parity run."
    ),
    release: str = typer.Option(
        DEFAULT_RELEASE, "--release", help="Data release for the parity run."
    ),
    limit: int = typer.Option(0, "--limit", min=0, help="At most this many questions (0: all)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Export teacher, core and decoder to ONNX (+ manifest); report ORT vs PyTorch parity.
    The files are written to a temporary folder beside ``--out`` that replaces it when the
    export is complete, so an interrupted export leaves the previous one as it was."""
    from celltext.cli.inference import set_torch_threads
    from celltext.export.onnx import export_model
    from celltext.export.publish import check_replaceable, staged_dir
    from celltext.inference.factory import load_predictor

    try:
        # fallback on: the parity run also compares the served answers (selector, editing)
        predictor = load_predictor(model, fallback=parity, backend="torch")
    except (FileNotFoundError, KeyError, ValueError, RuntimeError) as exc:
        raise fail(f"cannot load model {model or '(default)'}: {exc}") from exc
    set_torch_threads()  # one thread each for PyTorch and onnxruntime: a fair comparison
    if predictor.retrieval_only:
        raise fail("the retrieval baseline has no network to export", code=2)
    if out is None:
        from celltext.inference.loading import export_dir_for, resolve_ref

        out = export_dir_for(resolve_ref(model), teacher)
    try:
        check_replaceable(out)  # an export replaces the whole folder
    except ValueError as exc:
        raise fail(str(exc), code=2) from exc
    err_console.print(f"exporting {predictor.info.label} to {out}")
    try:
        manifest = export_model(predictor, out, teacher)
    except ValueError as exc:  # an unknown --teacher
        raise fail(str(exc), code=2) from exc
    result = {"out": str(out), "decoder_mode": manifest["decoder"]["mode"],
              "files": sorted(manifest_files(out))}  # fmt: skip
    int8_dir = None
    if int8:
        from celltext.export.parity import quantize_int8

        int8_dir = out.parent / f"{out.name}-int8"
        with staged_dir(int8_dir) as tmp:
            quantize_int8(out, tmp)
        result["int8_out"] = str(int8_dir)
    if parity:
        result["parity"] = _parity(predictor, out, int8_dir, release, split, limit)
    if as_json:
        emit_json(result)
    else:
        err_console.print(f"wrote {len(result['files'])} files to {out}")
        if parity:
            err_console.print((out / "parity.md").read_text())


def manifest_files(out: Path) -> list[str]:
    return json.loads((out / "manifest.json").read_text())["files"]


def _parity(
    predictor, out: Path, int8_dir: Path | None, release: str, split: str, limit: int
) -> dict:
    from celltext.data.release import load_release
    from celltext.export.parity import parity_report, report_markdown, tensorrt_check
    from celltext.inference.factory import load_predictor

    pairs = load_release(release).pairs(split)
    if limit:
        pairs = pairs[:limit]
    questions = [p.question for p in pairs]
    bank = predictor.bank  # the served answers are compared too, from the same phrase bank
    paths = {"onnx": load_predictor(str(out), bank=bank)}
    if int8_dir is not None:
        paths["onnx-int8"] = load_predictor(str(int8_dir), bank=bank)
    report = parity_report(
        predictor, paths, questions, [p.answer for p in pairs], split=f"{release}/{split}"
    )
    report["tensorrt"] = tensorrt_check(out, questions[:32])
    command = f"celltext export onnx --out {out}" + (" --int8" if int8_dir else "")
    command += f" --split {split}" + (f" --limit {limit}" if limit else "")
    (out / "parity.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "parity.md").write_text(report_markdown(report, command))
    return report


def register(app: typer.Typer) -> None:
    """Add ``export`` (``export onnx``)."""
    app.add_typer(export_app, name="export")
