"""First run against later runs: `dfs-sim run` (the default trace on Stripes) and `dfs-sim validate` on an empty
numba cache ("cold", as on a fresh install or a fresh CI job) and again on the cache the cold run left ("warm").

    python benchmarks/bench_first_run.py [--repeat 2]

The cache is cleared by pointing NUMBA_CACHE_DIR at a new empty directory for each cold run, so the
checkout's own __pycache__ is neither used nor touched. Each command runs in a fresh process, with the kernels
in their default mode (dfs_sim/cost/kernels.py: Python until compiled code is ready or the budget is spent)
and, for comparison, with DFS_SIM_KERNELS=compiled (plain numba: compile on first use). Reported: wall and
CPU seconds (best of --repeat), and cold / warm as a ratio, the number the benchmark claims.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {"dfs-sim run": ["run", "--format", "json"], "dfs-sim validate": ["validate"]}


def timed(argv, env) -> tuple[float, float]:
    """(wall, CPU) seconds of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dfs_sim.cli", *argv], env=env, cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cold_and_warm(argv, mode: str, repeat: int) -> tuple[tuple[float, float], tuple[float, float]]:
    cold, warm = [], []
    for _ in range(repeat):
        cache = Path(tempfile.mkdtemp(prefix="dfs-sim-numba-"))
        env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), DFS_SIM_KERNELS=mode)
        try:
            cold.append(timed(argv, env))
            warm.append(timed(argv, env))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    best = lambda runs: (min(r[0] for r in runs), min(r[1] for r in runs))  # noqa: E731
    return best(cold), best(warm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print("| command | kernels | cold wall (s) | warm wall (s) | cold / warm (wall) | cold CPU (s) | warm CPU (s) "
          "| cold / warm (CPU) |")
    print("|---|---|---|---|---|---|---|---|")
    for label, argv in COMMANDS.items():
        for mode in ("auto", "compiled"):
            (cold_wall, cold_cpu), (warm_wall, warm_cpu) = cold_and_warm(argv, mode, args.repeat)
            print(f"| {label} | {mode} | {cold_wall:.2f} | {warm_wall:.2f} | {cold_wall / warm_wall:.1f} | "
                  f"{cold_cpu:.2f} | {warm_cpu:.2f} | {cold_cpu / warm_cpu:.1f} |", flush=True)


if __name__ == "__main__":
    main()
