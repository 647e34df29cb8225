"""Measurements shared by the benchmarks and experiments: throughput (items per second),
memory (resident set size and its peaks from ``/proc/self/status``: ``VmRSS``, ``VmHWM``
reset through ``/proc/self/clear_refs`` where that is permitted), a description of the
machine a number was measured on, and the environment of a fresh measuring process.

Tracemalloc is not used: it does not see torch's allocations.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_MB = 1024 * 1024


# -- memory ------------------------------------------------------------------------------------
def status_kb(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), or None off Linux."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb() -> float | None:
    """Current resident set size in MB (``VmRSS``), or None off Linux."""
    kb = status_kb("VmRSS")
    return None if kb is None else kb / 1024


_LIFETIME_PEAK_MB = 0.0  # largest VmHWM seen before any reset (a reset forgets it)


def reset_peak() -> bool:
    """Reset the ``VmHWM`` high-water mark to the current RSS; False if not permitted."""
    global _LIFETIME_PEAK_MB
    _LIFETIME_PEAK_MB = max(_LIFETIME_PEAK_MB, peak_mb() or 0.0)
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_mb() -> float | None:
    """Peak resident set size in MB since the last :func:`reset_peak` (``VmHWM``)."""
    kb = status_kb("VmHWM")
    return None if kb is None else kb / 1024


def process_peak_mb() -> float | None:
    """Peak resident set size of the whole process so far, across resets (MB)."""
    now = peak_mb()
    return None if now is None else round(max(now, _LIFETIME_PEAK_MB), 2)


def peak_delta(fn: Callable[[], Any]) -> float | None:
    """Peak RSS while running ``fn`` minus RSS just before it, in MB (None if unmeasurable).

    Memory freed earlier but still resident is reused first, so in a process that has
    already done bigger work this is a lower bound; measure in a fresh process for an
    exact figure (:mod:`celltext.experiments.scaling` does).
    """
    if not reset_peak():
        fn()
        return None
    before = rss_mb()
    fn()
    after = peak_mb()
    return None if before is None or after is None else round(max(0.0, after - before), 2)


def child_env() -> dict[str, str]:
    """Environment of a fresh ``python -m celltext...`` measuring process: this checkout
    first on ``PYTHONPATH`` (so the child runs the same code) and no hub access."""
    import celltext

    env = dict(os.environ)
    root = str(Path(celltext.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


# -- machine -----------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    """CPU model, core count, memory, OS, Python/torch versions, CUDA device if any."""
    import torch

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_total = None
    try:
        import psutil

        mem_total = round(psutil.virtual_memory().total / _MB / 1024, 1)
    except ImportError:  # pragma: no cover - psutil ships with the environment
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gb": mem_total,
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


# -- timing ------------------------------------------------------------------------------------
def sync(device: str) -> None:
    """Wait for queued GPU work (nothing to wait for on the CPU)."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def throughput(fn: Callable[[], Any], items: int, reps: int, device: str = "cpu") -> float:
    """Items per second of ``fn`` (which processes ``items``), best of ``reps`` after warm-up."""
    fn()
    sync(device)
    best = float("inf")
    for _ in range(max(1, reps)):
        t0 = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return round(items / best, 2)
