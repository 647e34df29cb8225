"""Load test of the HTTP service: bounded concurrent clients for a fixed time.

Each of ``--concurrency`` clients (asyncio + httpx) posts ``/v1/answer`` requests one after
another for ``--duration`` seconds; the report gives requests, throughput, latency
percentiles (p50/p95/p99/max, ms), the fallback rate and every error (non-200 status or
transport failure) by kind. Target from the production issue: 50 clients for 60 s with
zero errors.

    # against a running service
    python benchmarks/load.py --url http://127.0.0.1:8000 --concurrency 50 --duration 60
    # or start `celltext serve` for the run (and stop it afterwards)
    python benchmarks/load.py --spawn --model models/default --concurrency 50 --duration 60

Exit status 1 when any request failed (``--allow-errors`` to report only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

DEFAULT_QUESTIONS = [
    "What is backpropagation?",
    "What is a convolutional neural network?",
    "What does SGD stand for?",
    "What is overfitting?",
    "What is a tokenizer?",
    "What is reinforcement learning?",
    "What is the capital of France?",
    "What is gradient clipping?",
    "What is a transformer in machine learning?",
    "What does MLOps mean?",
]


def load_questions(path: str | None, release: str | None, split: str) -> list[str]:
    """Questions from a JSONL/text file, a release split, or a built-in list."""
    if path:
        lines = [ln for ln in Path(path).read_text().splitlines() if ln.strip()]
        return [json.loads(ln)["question"] if ln.lstrip().startswith("{") else ln for ln in lines]
    if release:
        from celltext.data.release import load_release

        return [p.question for p in load_release(release).pairs(split)]
    return list(DEFAULT_QUESTIONS)


async def client_loop(client, url, questions, stop_at, stats, rng) -> None:
    """One client: post questions until ``stop_at`` (event-loop time)."""
    loop = asyncio.get_running_loop()
    while loop.time() < stop_at:
        question = rng.choice(questions)
        start = time.perf_counter()
        try:
            r = await client.post(url + "/v1/answer", json={"question": question})
            ms = (time.perf_counter() - start) * 1000.0
            if r.status_code == 200:
                stats["latencies"].append(ms)
                stats["fallback"] += int(bool(r.json().get("fallback")))
            else:
                stats["errors"][f"http {r.status_code}"] += 1
        except httpx.HTTPError as exc:
            stats["errors"][type(exc).__name__] += 1


async def run_load(
    url: str, questions: list[str], concurrency: int, duration: float, timeout: float
) -> dict:
    """Run the load test and return the report."""
    stats = {"latencies": [], "fallback": 0, "errors": Counter()}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        health = await client.get(url + "/health")
        health.raise_for_status()
        model = health.json().get("model")
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        stop_at = loop.time() + duration
        rngs = [random.Random(i) for i in range(concurrency)]
        await asyncio.gather(
            *(client_loop(client, url, questions, stop_at, stats, rng) for rng in rngs)
        )
        elapsed = time.perf_counter() - start
    lat = np.asarray(stats["latencies"], dtype=np.float64)
    ok = int(lat.size)
    errors = int(sum(stats["errors"].values()))
    pct = (lambda q: float(np.percentile(lat, q))) if ok else (lambda q: 0.0)
    return {
        "url": url,
        "model": model,
        "concurrency": concurrency,
        "duration_s": round(elapsed, 2),
        "requests": ok + errors,
        "ok": ok,
        "errors": errors,
        "error_kinds": dict(stats["errors"]),
        "throughput_rps": round(ok / elapsed, 2) if elapsed else 0.0,
        "latency_ms": {
            "p50": pct(50),
            "p95": pct(95),
            "p99": pct(99),
            "max": float(lat.max()) if ok else 0.0,
        },
        "fallback_rate": stats["fallback"] / ok if ok else 0.0,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def spawned_service(model: str | None, port: int, startup_timeout: float = 600.0):
    """Run ``celltext serve`` on 127.0.0.1:``port`` for the duration of the block."""
    cmd = [sys.executable, "-m", "celltext", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if model:
        cmd += ["--model", model]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"celltext serve exited with status {proc.returncode}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError("celltext serve did not become healthy in time")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="Running service.")
    parser.add_argument("--spawn", action="store_true", help="Start `celltext serve` for the run.")
    parser.add_argument("--model", default=None, help="Model ref for --spawn.")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="Seconds.")
    parser.add_argument("--timeout", type=float, default=30.0, help="Client timeout per request.")
    parser.add_argument("--questions", default=None, help="JSONL ({question}) or text file.")
    parser.add_argument("--release", default=None, help="Take questions from this release.")
    parser.add_argument("--split", default="test_paraphrase")
    parser.add_argument("--out", default=None, help="Also write the JSON report here.")
    parser.add_argument("--allow-errors", action="store_true", help="Exit 0 even with errors.")
    args = parser.parse_args(argv)
    questions = load_questions(args.questions, args.release, args.split)

    def run(url: str) -> dict:
        return asyncio.run(run_load(url, questions, args.concurrency, args.duration, args.timeout))

    if args.spawn:
        with spawned_service(args.model, _free_port()) as url:
            report = run(url)
    else:
        report = run(args.url)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0 if report["errors"] == 0 or args.allow_errors else 1


if __name__ == "__main__":
    sys.exit(main())
