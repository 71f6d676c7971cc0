"""`dfs-sim sweep` against a loop of `dfs-sim run` processes over the same points, cold and warm, on 1 and 2
local Dask workers, with a projection to N workers and the memory a chunk holds.

    python benchmarks/bench_sweep.py [--points 1024] [--loop 6]

The sweep: Bit Fusion (physical) variants on the shipped Fashion-MNIST budget-20 DFS trace (10,000 inputs),
a grid of 4 x 4 array shapes crossed with seeded random DRAM bandwidths, at batch 1. Every point is a
different machine, so a cold sweep (an empty --cache) searches every tiling afresh; a warm one reads every
point back from the cache the cold one left. The loop runs the first --loop points as
`dfs-sim run --set ...` processes, one after another, as a shell loop would; its time per point, times the
sweep's points, is what the loop would take. Ratios are of times measured in this one process, so other jobs
on the machine slow both sides alike. Results: benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TRACE = REPO / "traces" / "fmnist_resnet20_b20.npz"
SHAPES = [8, 16, 32, 64]


def write_spec(directory: Path, samples: int, chunk: int) -> Path:
    spec = {"traces": [str(TRACE)], "base": "bitfusion_physical",
            "grid": {"array.unroll.K": list(SHAPES), "array.unroll.C": list(SHAPES)},
            "random": {"n": samples, "seed": 1, "axes": {"dram.bandwidth_bits_per_cycle": {"integers": [64, 512]}}},
            "batch": 1, "chunk": chunk}
    path = directory / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def loop_seconds_per_point(spec, count: int) -> float:
    """Mean wall time of one `dfs-sim run` process per point, over the spec's first `count` points."""
    times = []
    for point in spec.points[:count]:
        sets = [arg for key, value in point.overrides.items() for arg in ("--set", f"{key}={value}")]
        argv = [sys.executable, "-m", "dfs_sim.cli", "run", "--trace", str(TRACE), "--hw", "bitfusion_physical",
                *sets, "--batch", "1", "--format", "json"]
        start = time.perf_counter()
        subprocess.run(argv, check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return sum(times) / len(times)


def sweep_seconds(spec, directory: Path, name: str, workers: int, cache: Path) -> tuple[float, dict]:
    from dfs_sim.sweep import run_sweep

    start = time.perf_counter()
    done = run_sweep(spec, directory / f"{name}.parquet", workers=workers, backend="dask", cache=cache)
    return time.perf_counter() - start, done


def cluster_start_seconds(workers: int) -> float:
    from dfs_sim.sweep import DaskExecutor

    start = time.perf_counter()
    DaskExecutor(workers, None).close()
    return time.perf_counter() - start


def in_process_seconds_per_point(spec, count: int) -> float:
    """One worker's time per point without any scheduler: run_chunk on `count` new points in this process."""
    from dfs_sim.sweep import check_points, chunk_task, run_chunk

    checked = check_points(spec)
    run_chunk(chunk_task(spec, checked, spec.points[-1:]))  # load the trace and compile the kernels first
    task = chunk_task(spec, checked, spec.points[:count])
    start = time.perf_counter()
    run_chunk(task)
    return (time.perf_counter() - start) / count


def chunk_peak_bytes(spec, size: int) -> int:
    """The peak traced memory of one chunk of `size` points: flat in `size` if a chunk holds one point's
    per-input data at a time."""
    from dfs_sim.sweep import check_points, chunk_task, run_chunk

    checked = check_points(spec)
    run_chunk(chunk_task(spec, checked, spec.points[:1]))
    task = chunk_task(spec, checked, spec.points[:size])
    tracemalloc.start()
    run_chunk(task)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1024, help="sweep points (a multiple of 16)")
    parser.add_argument("--loop", type=int, default=6, help="points run as separate dfs-sim processes")
    parser.add_argument("--chunk", type=int, default=32)
    args = parser.parse_args()
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    from dfs_sim.sweep import load_spec

    with tempfile.TemporaryDirectory(prefix="dfs-sim-bench-sweep-") as tmp:
        directory = Path(tmp)
        spec = load_spec(write_spec(directory, max(args.points // 16, 1), args.chunk))
        n = len(spec.points)
        loop = loop_seconds_per_point(spec, args.loop)
        start_1, start_2 = cluster_start_seconds(1), cluster_start_seconds(2)
        cold_1, _ = sweep_seconds(spec, directory, "cold1", 1, directory / "cache1")
        cold_2, done = sweep_seconds(spec, directory, "cold2", 2, directory / "cache2")
        warm_2, warm = sweep_seconds(spec, directory, "warm2", 2, directory / "cache2")
        assert warm["cache_hits"] == n, warm["cache_hits"]
        same = all((directory / f"{name}.parquet").read_bytes() == (directory / "cold1.parquet").read_bytes()
                   for name in ("cold2", "warm2"))
        per_point = in_process_seconds_per_point(spec, min(n, 64))
        peaks = {size: chunk_peak_bytes(spec, size) for size in (4, 32)}

    print(f"{n} points x 1 trace (10,000 inputs), Bit Fusion variants at batch 1, chunks of {args.chunk}; "
          f"results identical on 1 and 2 workers, cold and warm: {same}")
    print("| run | wall (s) | points/s | vs the process loop |")
    print("|---|---|---|---|")
    print(f"| loop of `dfs-sim run` processes ({args.loop} run, {n} projected) | {loop * n:.1f} | {1 / loop:.2f} | 1× |")
    for name, seconds in (("sweep, 1 worker, cold", cold_1), ("sweep, 2 workers, cold", cold_2),
                          ("sweep, 2 workers, warm (every point cached)", warm_2)):
        print(f"| {name} | {seconds:.1f} | {n / seconds:.1f} | {loop * n / seconds:.0f}× |")
    overhead = max(cold_1 - start_1 - n * per_point, 0.0) / (n / args.chunk)
    print(f"\none worker's time per point without a scheduler: {per_point * 1000:.1f} ms; Dask LocalCluster start "
          f"and stop: {start_1:.1f} s (1 worker), {start_2:.1f} s (2 workers); scheduler cost per {args.chunk}-point "
          f"task: {overhead * 1000:.0f} ms")
    print(f"cold speed-up from 1 to 2 workers: {cold_1 / cold_2:.2f}x (points/s {n / cold_1:.1f} -> {n / cold_2:.1f})")
    print("projected cold wall time, T(N) = start + points x per_point / N + tasks x per_task:")
    for workers in (1, 2, 8, 32, 128):
        projected = start_2 + n * per_point / workers + (n / args.chunk) * overhead
        print(f"  N = {workers:>3}: {projected:6.1f} s, {loop * n / projected:5.0f}x the loop")
    print(f"peak traced memory of one chunk: {peaks[4] / 1e6:.1f} MB at 4 points, {peaks[32] / 1e6:.1f} MB at 32 "
          f"points ({peaks[32] / peaks[4]:.2f}x)")


if __name__ == "__main__":
    main()
