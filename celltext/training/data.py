"""The tensors a run trains on, built once from a release, a teacher and a tokenizer.

Shapes: N texts or pairs, L max tokens, D teacher dim.

:func:`build_run_data` reads the release, selects the texts of each stage, embeds every
distinct text once with ``Teacher.encode`` (which caches on disk) and tokenises them.
The result is written to the run directory (``data.safetensors`` + ``data.json``) so a
resumed run reads exactly the same inputs without loading the teacher again.

:class:`IndexStream` gives the data order: an endless concatenation of seeded
per-epoch permutations, so the examples of optimizer step ``s`` are a pure function of
``(seed, s)``. Resuming needs nothing but the step.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from celltext.registry.tensorio import load_tensors, save_tensors, write_json_atomic
from celltext.training.args import DataArgs

log = logging.getLogger(__name__)

DATA_TENSORS = "data.safetensors"
DATA_JSON = "data.json"


@dataclass
class TextTable:
    """Texts with their teacher embeddings and token ids (``[bos] tokens [eos]``, padded)."""

    texts: list[str]
    emb: torch.Tensor  # (N, D) float32
    ids: torch.Tensor  # (N, L) int64, padded with pad_id
    lengths: torch.Tensor  # (N,) int64, tokens incl. bos/eos

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx: torch.Tensor) -> TextTable:
        """Rows ``idx`` as a new table."""
        return TextTable(
            [self.texts[i] for i in idx.tolist()], self.emb[idx], self.ids[idx], self.lengths[idx]
        )


@dataclass
class PairTable:
    """Question-answer pairs: question embeddings and the answers as a :class:`TextTable`."""

    questions: list[str]
    q_emb: torch.Tensor  # (N, D)
    answers: TextTable

    def __len__(self) -> int:
        return len(self.questions)


@dataclass
class RunData:
    """Everything the stages read."""

    texts: TextTable  # decoder training texts (train questions + answers + extra texts)
    val_texts: TextTable  # decoder validation texts (validation answers)
    train_pairs: PairTable
    val_pairs: PairTable
    release: dict[str, Any]  # {"version", "sha256"}
    teacher: dict[str, Any]  # {"id", "dim"}
    fingerprint: str


# -- selection ------------------------------------------------------------------------------
def _stable_subset(items: list[Any], limit: int, key) -> list[Any]:
    """At most ``limit`` items, chosen by hash of ``key(item)`` (independent of file order)."""
    if limit <= 0 or len(items) <= limit:
        return list(items)
    ranked = sorted(items, key=lambda it: hashlib.sha256(key(it).encode()).hexdigest())
    chosen = {id(it) for it in ranked[:limit]}
    return [it for it in items if id(it) in chosen]


def _unique(texts: list[str]) -> list[str]:
    return list(dict.fromkeys(t for t in texts if t and t.strip()))


def select_texts(release: Any, args: DataArgs) -> dict[str, Any]:
    """The pairs and texts a run uses, per the data args (deterministic)."""
    train = _stable_subset(release.pairs("train"), args.max_train_pairs, lambda p: p.id)
    val = _stable_subset(release.pairs("val"), args.max_val_pairs, lambda p: p.id)
    extra: list[str] = []
    if args.use_extra_texts and hasattr(release, "extra_texts"):
        extra = _stable_subset(list(release.extra_texts()), args.max_extra_texts, lambda t: t)
    questions = [p.question for p in train] if args.decoder_questions else []
    decoder_texts = _unique([p.answer for p in train] + questions + extra)
    return {
        "train": [(p.question, p.answer) for p in train],
        "val": [(p.question, p.answer) for p in val],
        "decoder_texts": decoder_texts,
        "val_texts": _unique([p.answer for p in val]),
    }


# -- building -------------------------------------------------------------------------------
def tokenize(
    tokenizer: Any, texts: list[str], max_tokens: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids (N, L) padded with ``pad_id`` and lengths (N,); long texts are truncated
    (keeping ``[bos]`` and ``[eos]``)."""
    rows = (
        tokenizer.encode_batch(texts)
        if hasattr(tokenizer, "encode_batch")
        else [tokenizer.encode(t) for t in texts]
    )
    rows = [[tokenizer.bos_id, *r[: max_tokens - 2], tokenizer.eos_id] for r in rows]
    width = max((len(r) for r in rows), default=2)
    ids = torch.full((len(rows), width), tokenizer.pad_id, dtype=torch.int64)  # (N, L)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.int64)
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.int64)  # (N,)
    return ids, lengths


def _table(texts: list[str], emb_of: dict[str, int], emb: np.ndarray, tok: Any, max_tokens: int):
    ids, lengths = tokenize(tok, texts, max_tokens)
    rows = (
        torch.from_numpy(emb[[emb_of[t] for t in texts]].copy())
        if texts
        else torch.zeros(0, emb.shape[1])
    )
    return TextTable(list(texts), rows.float(), ids, lengths)


def build_run_data(
    release: Any, teacher: Any, tokenizer: Any, args: DataArgs, progress: bool = False
) -> RunData:
    """Select, embed (once per distinct text) and tokenise everything a run needs."""
    sel = select_texts(release, args)
    every = _unique(
        sel["decoder_texts"]
        + sel["val_texts"]
        + [q for q, _ in sel["train"] + sel["val"]]
        + [a for _, a in sel["train"] + sel["val"]]
    )
    log.info("embedding %d distinct texts with %s", len(every), teacher.id)
    emb = np.asarray(teacher.encode(every, batch_size=64, progress=progress), dtype=np.float32)
    emb_of = {t: i for i, t in enumerate(every)}
    mt = args.max_tokens

    def pairs(items: list[tuple[str, str]]) -> PairTable:
        qs = [q for q, _ in items]
        q_emb = (
            torch.from_numpy(emb[[emb_of[q] for q in qs]].copy())
            if qs
            else torch.zeros(0, teacher.dim)
        )
        return PairTable(
            qs, q_emb.float(), _table([a for _, a in items], emb_of, emb, tokenizer, mt)
        )

    fingerprint = _fingerprint(release, teacher, tokenizer, args)
    return RunData(
        texts=_table(sel["decoder_texts"], emb_of, emb, tokenizer, mt),
        val_texts=_table(sel["val_texts"], emb_of, emb, tokenizer, mt),
        train_pairs=pairs(sel["train"]),
        val_pairs=pairs(sel["val"]),
        release={"version": release.version, "sha256": release.sha256},
        teacher={"id": teacher.id, "dim": int(teacher.dim)},
        fingerprint=fingerprint,
    )


def _fingerprint(release: Any, teacher: Any, tokenizer: Any, args: DataArgs) -> str:
    tok_hash = hashlib.sha256(tokenizer.to_str().encode()).hexdigest()
    parts = [release.version, release.sha256, teacher.id, tok_hash, args.config_hash()]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def concat_tables(a: TextTable, b: TextTable) -> TextTable:
    """Rows of ``a`` then ``b``, padded to the wider of the two."""
    width = max(a.ids.shape[1], b.ids.shape[1])
    pad = lambda t: torch.nn.functional.pad(t, (0, width - t.shape[1]))  # noqa: E731
    return TextTable(
        a.texts + b.texts,
        torch.cat([a.emb, b.emb]),
        torch.cat([pad(a.ids), pad(b.ids)]),
        torch.cat([a.lengths, b.lengths]),
    )


# -- run-directory cache --------------------------------------------------------------------
_TABLES = ("texts", "val_texts")
_PAIRS = ("train_pairs", "val_pairs")


def save_run_data(data: RunData, directory: Path) -> None:
    """Write ``data.safetensors`` (tensors) and ``data.json`` (texts, provenance)."""
    tensors: dict[str, torch.Tensor] = {}
    texts: dict[str, list[str]] = {}
    for name in _TABLES:
        t: TextTable = getattr(data, name)
        tensors.update({f"{name}.emb": t.emb, f"{name}.ids": t.ids, f"{name}.lengths": t.lengths})
        texts[name] = t.texts
    for name in _PAIRS:
        p: PairTable = getattr(data, name)
        a = p.answers
        tensors.update({f"{name}.q_emb": p.q_emb, f"{name}.a.emb": a.emb})
        tensors.update({f"{name}.a.ids": a.ids, f"{name}.a.lengths": a.lengths})
        texts[f"{name}.questions"] = p.questions
        texts[f"{name}.answers"] = a.texts
    save_tensors(directory / DATA_TENSORS, tensors)
    meta = {"release": data.release, "teacher": data.teacher, "fingerprint": data.fingerprint}
    write_json_atomic(directory / DATA_JSON, {**meta, "texts": texts})


def load_run_data(directory: Path) -> RunData:
    """Inverse of :func:`save_run_data`."""
    tensors, _ = load_tensors(directory / DATA_TENSORS)
    meta = json.loads((directory / DATA_JSON).read_text())
    texts = meta["texts"]

    def table(prefix: str, names: list[str]) -> TextTable:
        return TextTable(
            names, tensors[f"{prefix}.emb"], tensors[f"{prefix}.ids"], tensors[f"{prefix}.lengths"]
        )

    def pairs(name: str) -> PairTable:
        answers = table(f"{name}.a", texts[f"{name}.answers"])
        return PairTable(texts[f"{name}.questions"], tensors[f"{name}.q_emb"], answers)

    return RunData(
        texts=table("texts", texts["texts"]),
        val_texts=table("val_texts", texts["val_texts"]),
        train_pairs=pairs("train_pairs"),
        val_pairs=pairs("val_pairs"),
        release=meta["release"],
        teacher=meta["teacher"],
        fingerprint=meta["fingerprint"],
    )


# -- data order -----------------------------------------------------------------------------
class IndexStream:
    """Endless stream of example indices: epoch ``e`` is a permutation seeded by ``(seed, e)``.

    ``take(start, count)`` returns the indices at stream positions ``start .. start+count``,
    so any process can compute its share of any step without replaying the stream.
    """

    def __init__(self, n: int, seed: int):
        if n <= 0:
            raise ValueError("cannot stream an empty dataset")
        self.n, self.seed = n, seed
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            if len(self._perms) > 2:
                self._perms.pop(min(self._perms))
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perms[epoch] = torch.randperm(self.n, generator=g)
        return self._perms[epoch]

    def take(self, start: int, count: int) -> torch.Tensor:
        """Indices at positions ``[start, start + count)`` of the stream."""
        out = []
        pos, end = start, start + count
        while pos < end:
            epoch, offset = divmod(pos, self.n)
            chunk = min(end - pos, self.n - offset)
            out.append(self._perm(epoch)[offset : offset + chunk])
            pos += chunk
        return torch.cat(out)

    def epoch_of(self, position: int) -> float:
        """Fractional epoch at a stream position."""
        return position / self.n
