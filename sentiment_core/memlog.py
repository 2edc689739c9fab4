"""Phase marks with the process's memory, for benchmarks/worker_memory.py. Standard library only.

A sampler outside the worker sees how much memory it holds, but not what it is doing at the time;
these marks say when each phase of a training begins, so the benchmark can tell which one costs
the memory. They cost nothing unless SENTIMENT_MEMORY_LOG names a file (one JSON object a line).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

ENV = "SENTIMENT_MEMORY_LOG"
HEAVY = ("tensorflow", "torch", "pandas", "IPython")  # what a training worker on JAX should never load
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_bytes() -> int:
    """Resident now; /proc is read rather than psutil imported, so the worker stays dependency-free."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def mark(phase: str) -> None:
    """Say that `phase` begins now (and the one before has ended)."""
    path = os.environ.get(ENV)
    if not path:
        return
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux: the kernel's high-water mark
    line = {"phase": phase, "time": time.time(), "rss_mib": _rss_bytes() / 2**20, "peak_mib": peak / 2**20,
            "tensorflow": "tensorflow" in sys.modules, "modules": len(sys.modules),
            "heavy": [name for name in HEAVY if sys.modules.get(name) is not None]}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
