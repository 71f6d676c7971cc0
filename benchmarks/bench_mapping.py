"""Tiling-search speed: numba against the same search run as plain Python, in one process.

    python benchmarks/bench_mapping.py

Times the search over all (tile, loop order) candidates, one thread, per distinct (layer, precision)
at batch 16: the 61 Bit Fusion benchmark layers at their own precisions on the Bit Fusion config
(its simulator's conventions, then the physical rules), VGG-16 on Eyeriss and VGG-19 on Stripes (also
at their configs' batch), and the distinct layer shapes of DFS-ResNet74 at 8, 16 and 32 bits on
several shipped configs. Times are CPU seconds (time.process_time), best of 5. The plain-Python
baseline runs the identical search with every compiled piece swapped for its Python source, on
three layers. The Bit Fusion authors' optimizer takes 0.5-0.7 s per layer single-process (as
measured for this project).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numba
import numpy as np

from dfs_sim.cost import mapping
from dfs_sim.cost.kernels import python_twin
from dfs_sim.cost.records import RESULT
from dfs_sim.cost.table import build_entries, distinct_entries, hardware_record, output_storage_bits
from dfs_sim.hardware.config import load_hw
from dfs_sim.workload.network import load_network
from dfs_sim.workload.resnet import dfs_resnet

NETWORKS = Path(__file__).resolve().parents[1] / "hw_configs" / "networks"
BATCH = 16


def entries(network, hw, bits, batch=BATCH):
    """Distinct search entries of a network's conv/fc layers at a batch: fixed layers at their own bits, the
    others at `bits`."""
    index = np.array([i for i, layer in enumerate(network.layers) if layer.kind != "pool"])
    fixed = [network.layers[i].precision == "fixed" for i in index]
    store_w = np.array([network.layers[i].w_bits if f else bits for i, f in zip(index, fixed)])
    store_a = np.array([network.layers[i].a_bits if f else bits for i, f in zip(index, fixed)])
    run_bits = np.zeros((len(network.layers), 1, 2), dtype=np.int64)
    run_bits[index, 0, 0], run_bits[index, 0, 1] = store_w, store_a
    store_out = output_storage_bits(network, run_bits, hw)[index, 0]
    found, _ = build_entries(network, hw, index, store_w, store_a, store_out, np.full(len(index), batch), False)
    return distinct_entries(found)[0]


def run(rows, hw):
    out = np.zeros(len(rows), dtype=RESULT)
    mapping.search_entries(rows, hardware_record(hw), out)


def run_python(rows, hw):
    """The same search as its Python source (dfs_sim/cost/kernels.py: every compiled piece's source)."""
    search = python_twin(mapping)["search_entries"]
    out = np.zeros(len(rows), dtype=RESULT)
    search(rows.view(np.recarray), hardware_record(hw).view(np.recarray), out.view(np.recarray))


def timed(fn, repeat=5):
    best = np.inf
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    numba.set_num_threads(1)
    bitfusion = load_hw("bitfusion")
    bf_rows = np.concatenate([entries(load_network(path), bitfusion, 0)
                              for path in sorted(NETWORKS.glob("bitfusion_*.yaml"))])
    physical = dataclasses.replace(bitfusion, mapping=dataclasses.replace(bitfusion.mapping, conventions="physical"))
    bf_physical = np.concatenate([entries(load_network(path), physical, 0)
                                  for path in sorted(NETWORKS.glob("bitfusion_*.yaml"))])
    resnet = dfs_resnet((12, 12, 12))
    workloads = [("Bit Fusion benchmarks on bitfusion (its simulator's conventions)", bf_rows, bitfusion),
                 ("Bit Fusion benchmarks on bitfusion, physical rules", bf_physical, physical)]
    for network, name in (("eyeriss_vgg16_conv", "eyeriss"), ("stripes_vgg_19", "stripes")):
        hw = load_hw(name)
        for batch in sorted({hw.batch.size, BATCH}):
            rows = entries(load_network(NETWORKS / f"{network}.yaml"), hw, 16, batch)
            workloads.append((f"{network} on {name}", rows, hw))
    for name in ("bitfusion", "loom", "stripes", "bitsystolic_ws", "eyeriss"):
        hw = load_hw(name)
        rows = np.concatenate([entries(resnet, hw, bits) for bits in (8, 16, 32)])
        workloads.append((f"DFS-ResNet74 x {{8, 16, 32}} bits on {name}", rows, hw))
    for _, rows, hw in workloads:
        run(rows[:1], hw)  # compile
    print("| workload | (layer, precision) searches | numba total (s) | ms per search |")
    print("|---|---|---|---|")
    for label, rows, hw in workloads:
        seconds = timed(lambda rows=rows, hw=hw: run(rows, hw))
        print(f"| {label}, batch {rows[0]['batch']} | {len(rows)} | {seconds:.3f} | {1e3 * seconds / len(rows):.2f} |")
    sample = bf_rows[[0, 15, 40]]
    jit_sample = timed(lambda: run(sample, bitfusion))
    py_sample = timed(lambda: run_python(sample, bitfusion), repeat=1)
    per_search = timed(lambda: run(bf_rows, bitfusion)) / len(bf_rows)
    print(f"\nSame 3 layers, same code: plain Python {py_sample:.2f} s, numba {jit_sample:.4f} s: "
          f"{py_sample / jit_sample:.0f}x.")
    print(f"Against the authors' optimizer (0.5-0.7 s per layer): {0.5 / per_search:.0f}-{0.7 / per_search:.0f}x "
          f"faster per layer.")


if __name__ == "__main__":
    main()
