"""Timing shared by the benchmarks (run as scripts: `python benchmarks/bench_x.py`)."""
from __future__ import annotations

import time


def best_of(fn, repeat: int) -> float:
    """The fastest of `repeat` calls, in seconds: the least disturbed by other jobs on the machine."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)
