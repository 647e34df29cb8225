"""``celltext data build / stats / review / report / grammar``: the versioned Q-A dataset."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from celltext.cli.common import JSON_OPTION, emit_fields, emit_json, err_console, fail
from celltext.paths import DEFAULT_RELEASE

data_app = typer.Typer(
    help="Build, verify, review and plot dataset releases.", no_args_is_help=True
)

RELEASE_OPTION = typer.Option(
    DEFAULT_RELEASE, "--release", "-r", help="Release version or directory."
)


def stats_of(release) -> dict:
    """The stats contract: ``{version, sha256, total, subjects, per_domain, per_split}``."""
    from celltext.data.release import count_pairs

    counts = count_pairs(release.pairs())
    manifest = release.manifest
    for key in ("total", "subjects", "per_domain", "per_split"):
        if key in manifest and manifest[key] != counts[key]:
            from celltext.data.release import ReleaseIntegrityError

            raise ReleaseIntegrityError(
                f"{release.path / 'manifest.json'}: {key} in the manifest does not match the data"
            )
    return {
        "version": release.version,
        "sha256": release.sha256,
        "total": counts["total"],
        "subjects": counts["subjects"],
        "per_domain": counts["per_domain"],
        "per_split": counts["per_split"],
    }


def _load(release: str):
    from celltext.data.release import ReleaseIntegrityError, load_release

    try:
        return load_release(release)
    except (ReleaseIntegrityError, FileNotFoundError) as exc:
        raise fail(str(exc)) from exc


@data_app.command("build")
def build(
    version: str = typer.Option(DEFAULT_RELEASE, "--version", help="Release version to build."),
    config: Path | None = typer.Option(None, "--config", help="BuildConfig YAML/JSON."),
    out: Path | None = typer.Option(None, "--out", help="Output directory."),
    threads: int = typer.Option(1, "--threads", help="torch threads for the teacher."),
    force: bool = typer.Option(False, "--force", help="Replace a release already in --out."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Build a release from the offline sources (see scripts/install_sources.sh). Without
    --out it goes to data/releases/<version>, which must not hold a release yet (--force)."""
    import torch
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from celltext.config import ConfigError
    from celltext.data.build import BuildConfig, SourceMissingError, build_release
    from celltext.data.release import MANIFEST
    from celltext.paths import releases_dir

    torch.set_num_threads(threads)
    try:
        # a release's own config (configs/releases/<version>.yaml) unless --config is given
        cfg = BuildConfig.load(config) if config else BuildConfig.for_version(version)
        cfg = cfg.replace(version=version)
    except (ConfigError, OSError) as exc:
        raise fail(f"bad build config: {exc}") from exc
    target = out or releases_dir() / version
    if (target / MANIFEST).is_file() and not force:
        raise fail(
            f"{target} already holds a release; build into another --out DIR (and compare the "
            "manifests), or pass --force to replace it"
        )
    start = time.perf_counter()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
    )
    with Progress(*columns, TimeElapsedColumn(), console=err_console) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            key = "embedding" if stage == "embedding" else "sources"
            if key not in tasks:
                tasks[key] = bar.add_task(stage, total=max(total, 1))
            bar.update(tasks[key], completed=done, total=max(total, 1), description=stage)

        try:
            result = build_release(cfg, out, progress)
        except SourceMissingError as exc:
            raise fail(str(exc)) from exc
    from celltext.data.release import load_release

    summary = stats_of(load_release(str(result.path)))
    summary["path"] = str(result.path)
    summary["wall_s"] = round(time.perf_counter() - start, 1)
    summary["build_report"] = result.report
    if json_out:
        emit_json(summary)
    else:
        err_console.print(f"release {summary['version']} at {result.path}")
        err_console.print(f"{summary['total']} pairs, {summary['subjects']} subjects")
        err_console.print(f"per split: {summary['per_split']}")
        err_console.print(f"per domain: {summary['per_domain']}")
        err_console.print(f"built in {summary['wall_s']} s")


@data_app.command("stats")
def stats(release: str = RELEASE_OPTION, json_out: bool = JSON_OPTION) -> None:
    """Verify a release's hashes and print its counts."""
    from celltext.data.release import ReleaseIntegrityError

    rel = _load(release)
    try:
        out = stats_of(rel)
    except ReleaseIntegrityError as exc:
        raise fail(str(exc)) from exc
    if json_out:
        emit_json(out)
        return
    err_console.print(f"release {out['version']}  sha256 {out['sha256']}")
    err_console.print(f"{out['total']} pairs over {out['subjects']} subjects (hashes verified)")
    for name in ("per_split", "per_domain"):
        for key, value in out[name].items():
            err_console.print(f"  {key:<24} {value:>7}")


@data_app.command("review")
def review(
    release: str = RELEASE_OPTION,
    n: int = typer.Option(200, "--n", help="How many pairs to sample."),
    out: Path | None = typer.Option(None, "--out", help="CSV or JSONL file to write."),
    apply: Path | None = typer.Option(
        None, "--apply", help="A reviewed file: add its 'reject' rows to the reject list."
    ),
    rejects: Path | None = typer.Option(None, "--rejects", help="Reject list file."),
    force: bool = typer.Option(False, "--force", help="Overwrite a file that holds verdicts."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Export a sample for human review, or apply a reviewed file to the reject list. A file
    that already carries verdicts is never overwritten without --force."""
    from celltext.data import review as rv

    if apply is not None:
        if not apply.exists():
            raise fail(f"{apply}: no such file")
        try:
            added = rv.apply_verdicts(apply, rejects)
        except ValueError as exc:  # a forged pair id or a malformed row: nothing was written
            raise fail(f"{apply}: {exc}", code=2) from exc
        result = {"applied": str(apply), "rejected_added": added}
        result["rejects_file"] = str(rejects or rv.REJECTS_FILE)
    else:
        rel = _load(release)
        target = out or rv.REVIEW_DIR / f"sample-{rel.version}.csv"
        reviewed = rv.count_verdicts(target)
        if reviewed and not force:
            raise fail(
                f"{target} holds {reviewed} verdicts; apply it (--apply {target}), export to "
                "another --out, or pass --force to overwrite it"
            )
        path = rv.export_sample(rv.sample_for_review(rel, n), target)
        result = {"release": rel.version, "exported": str(path), "count": n}
    emit_fields(result, json_out)


@data_app.command("report")
def report(
    release: str = RELEASE_OPTION,
    out_dir: Path | None = typer.Option(None, "--out-dir", help="Where to write the PNGs."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Plot the domain distribution and answer lengths of a release (PNG)."""
    from celltext.data.report import make_report

    rel = _load(release)
    files = make_report(rel, out_dir)
    result = {"release": rel.version, "figures": [str(f) for f in files]}
    if json_out:
        emit_json(result)
    else:
        for f in files:
            err_console.print(f"wrote {f}")


@data_app.command("grammar")
def grammar(
    release: str = RELEASE_OPTION,
    examples: int = typer.Option(3, "--examples", help="Examples to show per problem code."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Check the articles and subject-verb agreement of a release's answers (all splits):
    counts per problem code, per code and source, and examples."""
    from celltext.data.build import BuildConfig
    from celltext.data.grammar import CODES, check_pairs, release_lexicon
    from celltext.data.grammar_gate import declared_nouns

    rel = _load(release)
    pairs = rel.pairs()
    declared = declared_nouns(BuildConfig.for_version(rel.version))
    lex = release_lexicon(pairs, declared=declared)
    result = {"release": rel.version, **check_pairs(pairs, examples=examples, lexicon=lex)}
    if json_out:
        emit_json(result)
        return
    err_console.print(
        f"release {rel.version}: {result['flagged']} of {result['checked']} answers flagged, "
        f"{result['problems']} problems"
    )
    for code, count in result["per_code"].items():
        err_console.print(f"  {code:<30} {count:>6}  {result['per_code_source'][code]}")
        err_console.print(f"    {CODES[code]}", markup=False)
        for ex in result["examples"][code]:
            err_console.print(f"    {ex['id']}: {ex['answer'][:100]}", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``celltext data ...``."""
    app.add_typer(data_app, name="data")
