#!/usr/bin/env bash
# Measure the shipped model on every quality task of the issues "A decoder that writes" and
# "Answers a user can trust"; one JSON per run under docs/results/v2/. Two evaluations at a
# time, one torch thread each (2-core machine). About 30 minutes. It replaces the committed
# JSON in docs/results/v2/; OUT=DIR writes elsewhere (the release v2 model: OUT=docs/results/v3).
#
#   bash benchmarks/quality_v2.sh [MODEL]        # default: models/default
#   OUT=/tmp/q2 bash benchmarks/quality_v2.sh    # leave docs/results/v2 alone
#   SKIP=_retrieval bash benchmarks/quality_v2.sh  # skip the runs whose name matches (a regex;
#                                                  # the baselines do not change with the model)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/default}
OUT=${OUT:-docs/results/v2}
mkdir -p "$OUT"
CT=${CELLTEXT:-.venv/bin/celltext}
N=${LIMIT:-500}
common="--model $MODEL --threads 1 --latency-samples 20 --json"
jobs=(
  "dec_train_generative|eval $common --decoder-only --split train --limit 300 --decode-mode generative"
  "dec_train_edit|eval $common --decoder-only --split train --limit 300 --decode-mode edit"
  "dec_unseen_generative|eval $common --decoder-only --split test_unseen --limit $N --decode-mode generative"
  "dec_unseen_edit|eval $common --decoder-only --split test_unseen --limit $N --decode-mode edit"
  "dec_unseen_search|eval $common --decoder-only --split test_unseen --limit $N --decode-mode search"
  "dec_sentences_generative|eval $common --decoder-only --split heldout_sentences --decode-mode generative"
  "dec_sentences_edit|eval $common --decoder-only --split heldout_sentences --decode-mode edit"
  "dec_sentences_search|eval $common --decoder-only --split heldout_sentences --decode-mode search"
  "dec_sentences_search_k3_r8|eval $common --decoder-only --split heldout_sentences --decode-mode search --search-prototypes 3 --rerank 8"
  "e2e_paraphrase_production|eval $common --split test_paraphrase --limit $N"
  "e2e_paraphrase_generative|eval $common --split test_paraphrase --limit $N --no-fallback"
  "e2e_paraphrase_retrieval|eval --model retrieval --threads 1 --latency-samples 20 --json --split test_paraphrase --limit $N"
  "e2e_unseen_production|eval $common --split test_unseen --limit $N"
  "e2e_unseen_generative|eval $common --split test_unseen --limit $N --no-fallback"
  "e2e_unseen_retrieval|eval --model retrieval --threads 1 --latency-samples 20 --json --split test_unseen --limit $N"
  "e2e_heldout_production|eval $common --split heldout_paraphrase"
  "e2e_heldout_retrieval|eval --model retrieval --threads 1 --latency-samples 20 --json --split heldout_paraphrase"
  "e2e_heldout_generative|eval $common --split heldout_paraphrase --no-fallback"
  "oos_production|eval $common --split out_of_scope"
  "e2e_natural_production|eval $common --split heldout_natural"
  "e2e_natural_retrieval|eval --model retrieval --threads 1 --latency-samples 20 --json --split heldout_natural"
)
SKIP=${SKIP:-}
printf '%s\n' "${jobs[@]}" | { if [ -n "$SKIP" ]; then grep -Ev "^[^|]*($SKIP)[^|]*\|"; else cat; fi; } | xargs -P 2 -I{} bash -c '
  name=${1%%|*}; args=${1#*|}
  if '"$CT"' $args --out '"$OUT"'/$name.json > /dev/null 2> '"$OUT"'/$name.log; then
    echo "done $name"; rm -f '"$OUT"'/$name.log
  else echo "FAILED $name (see '"$OUT"'/$name.log)"; fi' _ {}
