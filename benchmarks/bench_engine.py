"""Engine speed against a bare numpy gather, in the same process on the same data.

    python benchmarks/bench_engine.py [--repeat 5]

Synthetic DFS-ResNet74 traces (35 gated units, 217 layers) of 10k and 1M inputs with random
decisions. The baseline is the least a simulator can do: a numpy gather over a precomputed
per-unit cost table (4 per-input metrics), summed over units. The engine does that plus latency,
batch policies, per-layer histograms and the two proxy measures. Also timed: `dfs-sim run` on a
shipped trace with a warm JIT cache, and the peak memory of simulating 1M inputs.
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from dfs_sim.cost import aggregate
from dfs_sim.engine import kernel_threads, simulate
from dfs_sim.hardware.config import load_hw
from dfs_sim.trace import default_options, load_trace, write_trace
from dfs_sim.workload.resnet import dfs_resnet
from timing import best_of

REPO = Path(__file__).resolve().parents[1]


def numpy_gather(decisions, unit_small, base, chunk=1 << 18):
    """The baseline: per input, base + sum over units of table[unit, decision], one vectorised gather per
    unit and chunk (cheaper than one fancy index over all units, which materialises inputs x units x 4)."""
    n, units = decisions.shape
    out = np.empty((n, unit_small.shape[-1]))
    for start in range(0, n, chunk):
        d = np.asarray(decisions[start:start + chunk])
        total = np.broadcast_to(base, (len(d), unit_small.shape[-1])).copy()
        for u in range(units):
            total += unit_small[u][d[:, u]]
        out[start:start + chunk] = total
    return out


def bench_size(path: Path, hw, repeat: int) -> dict:
    trace = load_trace(path)
    n, units = trace.decisions.shape
    layers = len(trace.network.layers)
    result = simulate(trace, hw)  # warm the JIT and build the table once
    table = result.table
    unit_small = np.ascontiguousarray(table.per_input_columns(table.unit_cost)[:, :, 0])
    base = np.zeros(4)
    rank = np.arange(table.case_bits.shape[0])
    decisions = np.ascontiguousarray(trace.decisions)
    out = np.zeros((n, aggregate.N_OUT))

    kernel_table = np.ascontiguousarray(unit_small[:, :, None])
    kernel_base = base[None, :]

    def engine_kernel():
        aggregate.per_input_costs(decisions, 1, aggregate.LOCKSTEP, rank, kernel_table, kernel_base, out)

    gather = best_of(lambda: numpy_gather(decisions, unit_small, base), repeat)
    with kernel_threads(n):
        kernel = best_of(engine_kernel, repeat)
    full = best_of(lambda: simulate(trace, hw), max(1, repeat // 2))
    batched = best_of(lambda: simulate(trace, hw, batch=16, policy="bucketed"), max(1, repeat // 2))
    grouped = best_of(lambda: simulate(trace, hw, batch=16, policy="grouped"), max(1, repeat // 2))
    return {"inputs": n, "units": units, "layers": layers, "gather_s": gather, "kernel_s": kernel,
            "simulate_s": full, "simulate_b16_s": batched, "simulate_grouped_s": grouped}


def peak_memory_mb(path: Path) -> float:
    code = ("import resource; from dfs_sim.engine import kernel_threads, simulate; "
            f"r = simulate({str(path)!r}, 'stripes', batch=16, policy='bucketed'); r.summary; "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def cli_seconds(repeat: int) -> tuple[float, float]:
    trace = REPO / "traces/paper/dfs_resnet74_cifar10_paper_b30.npz"
    run = [sys.executable, "-m", "dfs_sim.cli", "run", "--trace", str(trace), "--hw", "stripes"]
    subprocess.run(run, capture_output=True, check=True)  # fills the JIT cache
    cli = best_of(lambda: subprocess.run(run, capture_output=True, check=True), repeat)
    bare = best_of(lambda: subprocess.run([sys.executable, "-c", "import numpy, pandas, numba"],
                                          capture_output=True, check=True), repeat)
    return cli, bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    hw = load_hw("stripes")
    network = dfs_resnet((12, 12, 12))
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for n in (10_000, 1_000_000):
            paths[n] = write_trace(Path(tmp) / f"synthetic_{n}.npz", network=network, options=default_options(),
                                   decisions=rng.integers(0, 4, (n, network.n_units), dtype=np.uint8))
            rows.append(bench_size(paths[n], hw, args.repeat))
        peak = peak_memory_mb(paths[1_000_000])
    cli, bare = cli_seconds(args.repeat)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("| inputs | numpy gather (s) | engine kernel (s) | kernel / gather | simulate() (s) | "
          "simulate / gather | simulate, batch 16 bucketed (s) | grouped / bucketed | input-layer evals/s (simulate) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        evals = r["inputs"] * r["layers"] / r["simulate_s"]
        print(f"| {r['inputs']:,} | {r['gather_s']:.4f} | {r['kernel_s']:.4f} | {r['kernel_s'] / r['gather_s']:.2f} | "
              f"{r['simulate_s']:.4f} | {r['simulate_s'] / r['gather_s']:.2f} | {r['simulate_b16_s']:.4f} | "
              f"{r['simulate_grouped_s'] / r['simulate_b16_s']:.2f} | {evals:.3g} |")
    print(f"\n`dfs-sim run` on a shipped 10k-input ResNet-74 trace, warm JIT cache: {cli:.2f} s "
          f"(of which importing numpy+pandas+numba alone: {bare:.2f} s)")
    print(f"peak memory, simulating 1M inputs (batch 16, bucketed) in a fresh process: {peak:.0f} MB")
    print(f"(this benchmark process peaked at {own:.0f} MB)")


if __name__ == "__main__":
    main()
