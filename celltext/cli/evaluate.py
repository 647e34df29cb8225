"""``celltext eval`` (quality on a release split) and ``celltext ablate`` (the ablation study).

The logic lives in :mod:`celltext.evaluation` and :mod:`celltext.experiments.ablation`; these
functions parse options and print.
"""

from __future__ import annotations

from pathlib import Path

import typer

from celltext.cli.common import JSON_OPTION, emit_json, emit_report, err_console, fail, working
from celltext.paths import DEFAULT_RELEASE

MODEL_OPTION = typer.Option(
    None, "--model", "-m", help="Checkpoint dir, name@alias, name/version, or 'retrieval'."
)
RELEASE_OPTION = typer.Option(DEFAULT_RELEASE, "--release", "-r", help="Data release version.")
THREADS_OPTION = typer.Option(2, "--threads", help="torch intra-op threads (set explicitly).")


def eval_command(
    split: str = typer.Option(
        ...,
        "--split",
        "-s",
        help="train, val, test_paraphrase, test_unseen, or a held-out set: "
        "heldout_paraphrase, heldout_sentences, out_of_scope, heldout_natural (data/heldout), "
        "or dev_natural (data/dev: the natural questions thresholds are tuned on).",
    ),
    model: str | None = MODEL_OPTION,
    release: str = RELEASE_OPTION,
    no_fallback: bool = typer.Option(
        False, "--no-fallback", help="Generative path only (no quality check / phrase bank)."
    ),
    limit: int | None = typer.Option(None, "--limit", help="Fixed-seed sample of N pairs."),
    decoder_only: bool = typer.Option(
        False, "--decoder-only", help="Decode teacher embeddings of the split's answers."
    ),
    decode_mode: str = typer.Option(
        "generative",
        "--decode-mode",
        help="--decoder-only: generative (the decoder alone), edit (retrieve and edit), "
        "search (best of plain, edited and retrieved by teacher cosine) or correct (search, "
        "then a corrector with feedback; needs --corrector).",
    ),  # fmt: skip
    search_prototypes: int = typer.Option(
        1,
        "--search-prototypes",
        min=1,
        help="--decode-mode search: the nearest phrase-bank texts tried (each also edited).",
    ),  # fmt: skip
    correction_steps: int = typer.Option(
        0,
        "--correction-steps",
        min=0,
        help="--decode-mode search: rounds that edit the best text so far again (kept when "
        "closer to the embedding).",
    ),  # fmt: skip
    corrector: str = typer.Option(
        "",
        "--corrector",
        help="--decode-mode correct: folder of a trained corrector (default $CELLTEXT_CORRECTOR).",
    ),  # fmt: skip
    correct_steps: int = typer.Option(
        3, "--correct-steps", min=0, help="--decode-mode correct: rounds of correction."
    ),
    correct_beam: int = typer.Option(
        2, "--correct-beam", min=1, help="--decode-mode correct: texts kept between rounds."
    ),
    correct_samples: int = typer.Option(
        0,
        "--correct-samples",
        min=0,
        help="--decode-mode correct: sampled corrections per kept text and round.",
    ),  # fmt: skip
    rerank: int = typer.Option(
        0, "--rerank", help="Also evaluate best-of-N reranking by teacher cosine (N >= 2)."
    ),
    num_beams: int = typer.Option(
        1, "--num-beams", help="Beam search with this many beams when > 1 (else greedy)."
    ),
    do_sample: bool = typer.Option(False, "--do-sample", help="Sample instead (num_beams 1)."),
    max_new_tokens: int = typer.Option(48, "--max-new-tokens"),
    latency_samples: int = typer.Option(
        32, "--latency-samples", help="Questions timed one at a time (batch 1, warm)."
    ),
    threads: int = THREADS_OPTION,
    answer_top1: bool = typer.Option(
        True,
        "--answer-top1/--no-answer-top1",
        help="Rank the core's prediction among all training answers (embeds them once).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the --limit sample and of sampling."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Also write the JSON here."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Quality of a model (or the retrieval baseline) on a release split.

    Reports BLEU, chrF, ROUGE-L, semantic similarity, exact match, coherence, unknown-token
    rate, fallback rate, core cosine, counts, per-domain breakdowns and batch-1 latency.
    Every number except latency is identical from run to run.
    """
    import torch

    from celltext.config import ConfigError
    from celltext.data.heldout import HELDOUT_SPLITS, WithHeldout
    from celltext.data.schema import SPLITS
    from celltext.evaluation.evaluate import EvalRequest, run_eval
    from celltext.inference.options import DECODE_MODES, PredictorConfig

    if split not in (*SPLITS, *HELDOUT_SPLITS):
        raise fail(f"unknown split {split!r}; choose from {', '.join((*SPLITS, *HELDOUT_SPLITS))}")
    if decode_mode not in DECODE_MODES:
        raise fail(f"--decode-mode must be one of {', '.join(DECODE_MODES)}, not {decode_mode!r}")
    decoding = {
        "seed": seed,
        "generation": {"num_beams": num_beams, "do_sample": do_sample,
                       "max_new_tokens": max_new_tokens},
        "search": {"prototypes": search_prototypes, "correction_steps": correction_steps},
        "correction": {"weights": corrector, "steps": correct_steps, "beam": correct_beam,
                       "samples": correct_samples, "prototypes": search_prototypes},
    }  # fmt: skip
    try:
        options = PredictorConfig().replace(decoding=decoding)
    except ConfigError as exc:  # names the field: decoding.generation.do_sample: ...
        raise fail(f"invalid decoding option {exc}") from exc
    torch.set_num_threads(threads)
    release_obj = WithHeldout(_load_release(release))
    try:
        with working(f"eval {model or 'default model'} on {release}/{split}") as update:
            request = EvalRequest(
                model, split, fallback=not no_fallback, decoder_only=decoder_only,
                decode_mode=decode_mode, limit=limit, rerank=rerank,
                latency_samples=latency_samples, options=options, rank_answers=answer_top1,
            )  # fmt: skip
            # per-chunk progress on a terminal only (logs get nothing to show)
            progress = update if err_console.is_terminal else None
            report = run_eval(request, release_obj, on_progress=progress)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise fail(str(exc)) from exc
    report["torch_threads"] = threads
    emit_report(report, out, json_out, _print_report)


def _load_release(version: str):
    from celltext.data.release import load_release

    try:
        return load_release(version)
    except Exception as exc:  # noqa: BLE001 -- missing or corrupt release: say which
        raise fail(f"cannot load release {version!r}: {exc}") from exc


def _print_report(report: dict) -> None:
    from rich.table import Table

    title = f"{report['model']} on {report['release']['version']}/{report['split']}"
    table = Table(title=f"{title} ({report['task']}, n={report['counts']['n']})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    if "rerank" in report:
        table.add_column(f"rerank@{report['rerank']['candidates']}", justify="right")
    for key, value in report["metrics"].items():
        row = [key, f"{value:.4f}"]
        if "rerank" in report:
            row.append(f"{report['rerank']['metrics'].get(key, float('nan')):.4f}")
        table.add_row(*row)
    lat = report["latency_ms"]
    if "p50" in lat:
        row = ["latency p50/p95 ms", f"{lat['p50']:.1f}/{lat['p95']:.1f}"]
        if "rerank" in report:
            rl = report["rerank"]["latency_ms"]
            row.append(f"{rl['p50']:.1f}/{rl['p95']:.1f}")
        table.add_row(*row)
    err_console.print(table)


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def ablate_command(
    budget: str = typer.Option("full", "--budget", help="tiny (test), small, full (~20-30 min)."),
    preset: str = typer.Option("quick", "--preset", help="Base training preset."),
    release: str = RELEASE_OPTION,
    seed: int = typer.Option(0, "--seed"),
    decoder_steps: int = typer.Option(0, "--decoder-steps", help="Override the budget (> 0)."),
    core_steps: int = typer.Option(0, "--core-steps", help="Override the budget (> 0)."),
    max_train_pairs: int = typer.Option(-1, "--max-train-pairs", help="0 = all; -1 = budget."),
    eval_limit: int = typer.Option(0, "--eval-limit", help="Pairs per split (> 0 overrides)."),
    cores: str = typer.Option(
        "", "--cores", help="Comma-separated cores (default: every registered core)."
    ),
    decoders: str = typer.Option(
        "", "--decoders", help="Comma-separated decoders (default: every registered decoder)."
    ),
    base_decoder: str = typer.Option("ret", "--base-decoder", help="Decoder the cores use."),
    splits: str = typer.Option("val,test_paraphrase,test_unseen", "--splits"),
    threads: int = THREADS_OPTION,
    out: Path | None = typer.Option(None, "--out", help="Run directory."),
    doc: Path = typer.Option(Path("docs/PERFORMANCE_ANALYSIS.md"), "--doc"),
    figures: Path = typer.Option(Path("docs/figures"), "--figures"),
    default_configs: bool = typer.Option(
        False, "--default-configs", help="Registered default sizes instead of the preset's."
    ),
    no_mlflow: bool = typer.Option(False, "--no-mlflow", help="Do not log to MLflow."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Train every core and decoder on the same release, seed and budget; evaluate them and
    the retrieval baseline; write docs/PERFORMANCE_ANALYSIS.md (tables, plots) and MLflow."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from celltext.config import ConfigError
    from celltext.experiments.ablation import AblationConfig, run_ablation

    command = ["celltext ablate", f"--budget {budget}", f"--preset {preset}",
               f"--release {release}", f"--seed {seed}", f"--threads {threads}"]  # fmt: skip
    for flag, value, default in (
        ("--decoder-steps", decoder_steps, 0), ("--core-steps", core_steps, 0),
        ("--max-train-pairs", max_train_pairs, -1), ("--eval-limit", eval_limit, 0),
        ("--cores", cores, ""), ("--decoders", decoders, ""),
        ("--base-decoder", base_decoder, "ret"),
        ("--splits", splits, "val,test_paraphrase,test_unseen"),
    ):  # fmt: skip
        if value != default:
            command.append(f"{flag} {value}")
    if default_configs:
        command.append("--default-configs")
    try:
        cfg = AblationConfig(
            preset=preset, release=release, seed=seed, budget=budget,
            decoder_steps=decoder_steps, core_steps=core_steps,
            max_train_pairs=max_train_pairs, eval_limit=eval_limit, cores=_csv(cores),
            decoders=_csv(decoders), base_decoder=base_decoder, splits=_csv(splits),
            threads=threads, out=str(out or ""), doc=str(doc), figures=str(figures),
            mlflow=not no_mlflow, command=" ".join(command), match_sizes=not default_configs,
        )  # fmt: skip
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err_console, transient=True) as progress:  # fmt: skip
        task = progress.add_task("ablation", total=None)

        def on_step(msg: str) -> None:
            err_console.log(msg)
            progress.update(task, description=msg)

        try:
            report = run_ablation(cfg, on_step)
        except (ValueError, FileNotFoundError, KeyError) as exc:
            raise fail(str(exc)) from exc
    summary = {
        "doc": report["doc"],
        "out": str(cfg.out_dir()),
        "wall_s": report["wall_s"],
        "budget": report["budget"],
        "cores": {n: r["splits"] for n, r in report["cores"].items()},
        "decoders": {n: r["splits"] for n, r in report["decoders"].items()},
        "retrieval": report["retrieval"]["splits"],
    }
    if json_out:
        emit_json(summary)
    else:
        err_console.print(f"wrote {report['doc']} ({report['wall_s']} s)")


def register(app: typer.Typer) -> None:
    """Add ``eval`` and ``ablate`` to the CLI."""
    app.command("eval")(eval_command)
    app.command("ablate")(ablate_command)
