"""Tiling-search speed: numba against the same search run as plain Python, in one process.

    python benchmarks/bench_mapping.py

Times the search over all (tile, loop order) candidates for the 61 Bit Fusion benchmark layers
(batch 16, each at its own precision) and for the distinct layer shapes of DFS-ResNet74 at 8, 16
and 32 bits. The plain-Python baseline runs `search_one.py_func`, the identical code without the
JIT, on a few layers (it takes seconds per layer). The Bit Fusion authors' optimizer takes
0.5-0.7 s per layer single-process (as measured for this project).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from dfs_sim.cost import mapping
from dfs_sim.cost.table import search_params
from dfs_sim.hardware.accelerators import MODELS
from dfs_sim.hardware.accelerators.base import KIND_CODES, Work
from dfs_sim.hardware.config import load_hw
from dfs_sim.workload.network import load_network
from dfs_sim.workload.resnet import dfs_resnet

NETWORKS = Path(__file__).resolve().parents[1] / "hw_configs" / "networks"


def entries(network, hw, w_bits, a_bits, batch):
    model = MODELS[hw.model]
    rows = []
    for i, layer in enumerate(network.layers):
        if layer.kind == "pool":
            continue
        w, a = (layer.w_bits, layer.a_bits) if layer.precision == "fixed" else (w_bits, a_bits)
        ew, ea = model.effective_bits(hw, np.array([w]), np.array([a]))
        work = Work(np.array([KIND_CODES[layer.kind]]), np.array([layer.macs * batch]), np.array([batch]), ew, ea)
        m = model.array_mapping(hw, work).as_matrix()[0]
        shape = (batch, layer.h_out, layer.w_out, layer.kernel, layer.stride, layer.c_in // layer.groups,
                 layer.c_out // layer.groups, int(layer.reads_input or i == 0), w, a)
        rows.append((shape, m))
    unique = {row[0]: row for row in rows}
    return list(unique.values())


def run(rows, hw, fn):
    params = search_params(hw)
    out = np.zeros(mapping.N_OUT)
    for shape, m in rows:
        b, oh, ow, k, s, ic, oc, im2col, w, a = shape
        fn(b, oh, ow, k, s, ic, oc, bool(im2col), w, a, hw.output_bits, int(m[0]), int(m[1]), int(m[2]), int(m[3]),
           m[4], m[5], m[6], m[7], 1.0, 1.0, 1.0, 1.0, 1.0, params, mapping.PERMS, mapping.PERM_COUNTS, mapping.INDEXES, out)


def timed(fn, repeat=3):
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    bitfusion = load_hw("bitfusion")
    bf_rows = []
    for path in sorted(NETWORKS.glob("bitfusion_*.yaml")):
        bf_rows += entries(load_network(path), bitfusion, 0, 0, 16)
    resnet = dfs_resnet((12, 12, 12))
    dfs_rows = [row for bits in (8, 16, 32) for row in entries(resnet, bitfusion, bits, bits, 16)]
    run(bf_rows[:1], bitfusion, mapping.search_one)  # compile
    jit_bf = timed(lambda: run(bf_rows, bitfusion, mapping.search_one))
    jit_dfs = timed(lambda: run(dfs_rows, bitfusion, mapping.search_one))
    sample = [bf_rows[i] for i in (0, 15, 40)]
    jit_sample = timed(lambda: run(sample, bitfusion, mapping.search_one))
    py_sample = timed(lambda: run(sample, bitfusion, mapping.search_one.py_func), repeat=1)
    print("| workload | (layer, precision) searches | numba total (s) | ms per search |")
    print("|---|---|---|---|")
    print(f"| Bit Fusion benchmarks, batch 16 | {len(bf_rows)} | {jit_bf:.3f} | {1e3 * jit_bf / len(bf_rows):.2f} |")
    print(f"| DFS-ResNet74 shapes x {{8, 16, 32}} bits, batch 16 | {len(dfs_rows)} | {jit_dfs:.3f} | "
          f"{1e3 * jit_dfs / len(dfs_rows):.2f} |")
    print(f"\nSame 3 layers, same code: plain Python {py_sample:.2f} s, numba {jit_sample:.4f} s: "
          f"{py_sample / jit_sample:.0f}x.")
    print(f"Against the authors' optimizer (0.5-0.7 s per layer): {0.5 / (jit_bf / len(bf_rows)):.0f}-"
          f"{0.7 / (jit_bf / len(bf_rows)):.0f}x faster per layer.")


if __name__ == "__main__":
    main()
