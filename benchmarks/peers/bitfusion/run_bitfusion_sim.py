"""Run the Bit Fusion authors' optimizer on configurations they did not publish, for tests/test_mapping_bitfusion.py.

    python3 -m venv ../bf-venv && ../bf-venv/bin/pip install numpy       # beside the checkout, not in it
    git clone https://github.com/hsharma35/bitfusion ../bitfusion       # commit 04ec1c8
    ../bf-venv/bin/python benchmarks/peers/bitfusion/run_bitfusion_sim.py ../bitfusion \
        > benchmarks/peers/bitfusion/bitfusion_sim_other_configs.csv

Nothing of the simulator is copied here: this script imports it from the checkout given on the
command line, in its own venv (numpy only; dfs-sim is not imported). For every conv/matmul layer
of the eight benchmark networks it calls the optimizer's per-order search
(`optimizer._optimize_for_order`) for each of the 120 loop orders and keeps the best as
`optimizer.optimize_for_order` does (fewest cycles, then least energy; that function runs the same
loop in a process pool), then reads cycles, memory-wait cycles and DRAM bits from
`optimizer.get_stats_fast` (what `Simulator.get_conv_cycles` reports). The layer shapes come from
dfs-sim's network files (hw_configs/networks/bitfusion_*.yaml), read here as plain YAML-like text
with the standard library.

The energy costs only break ties between orders of equal cycles; they are the per-bit energies of
hw_configs/bitfusion.yaml (CACTI-7 45 nm banks, 235.104 pJ per array cycle), the same the test uses.
"""
from __future__ import annotations

import ast
import csv
import itertools
import sys
import types
from collections import namedtuple
from pathlib import Path

HERE = Path(__file__).resolve().parent
NETWORKS = HERE.parents[2] / "hw_configs" / "networks"
BENCHMARKS = ("alexnet", "svhn", "cifar10", "lenet5", "vgg7", "resnet18", "rnn", "lstm")
BATCH = 16
# (N rows, M columns, DRAM bits per cycle, WBUF, IBUF, OBUF bytes): configurations the authors' sweep
# (results/bitfusion-eyeriss-sim-sweep.csv) does not hold: other row counts, narrow links, small buffers.
CONFIGS = (
    (8, 16, 64, 32768, 16384, 8192),
    (32, 32, 128, 65536, 32768, 16384),
    (16, 32, 192, 16384, 8192, 4096),
    (32, 16, 512, 131072, 65536, 32768),
)
Energy = namedtuple("Energy", ["core_dynamic_energy", "wbuf_read_energy", "wbuf_write_energy", "ibuf_read_energy",
                               "ibuf_write_energy", "obuf_read_energy", "obuf_write_energy"])
# nJ per cycle and per bit, as the simulator's energy tuple holds them (bitfusion.yaml's pJ / 1000).
ENERGY = Energy(0.235104, 0.021373e-3, 0.028911e-3, 0.059472e-3, 0.113716e-3, 0.033163e-3, 0.073094e-3)
LOOPS = ("B/b", "OW/ow", "OH/oh", "IC/ic", "OC/oc")


def layers(path: Path):
    """(name, kernel, output size, stride, c_in, c_out, w_bits, a_bits, im2col) of each layer line."""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line.startswith("- {name:"):
            continue
        body = line[2:].replace("{", "{'").replace(", ", ", '").replace(": ", "': ").replace("true", "True")
        layer = ast.literal_eval(body)
        yield (layer["name"], layer["kernel"], layer["h_out"], layer["stride"], layer["c_in"], layer["c_out"],
               layer["w_bits"], layer["a_bits"], layer.get("reads_input", False))


def best_stats(optimizer, acc, kernel, out, stride, c_in, c_out, w_bits, a_bits, im2col):
    params = (acc, kernel, out, stride, c_in, c_out, BATCH, a_bits, w_bits, im2col, ENERGY)
    best = None
    for order in itertools.permutations(LOOPS):
        tiling, order_type, cycles, energy = optimizer._optimize_for_order(params, order)
        if tiling is not None and (best is None or (cycles, energy) < best[:2]):
            best = (cycles, energy, tiling, order_type)
    return optimizer.get_stats_fast(params, best[2], best[3])


def load_simulator(checkout: str):
    """The optimizer module and the Accelerator class. The optimizer imports LoopStack (Python 2 code,
    used only to emit instructions for a chosen mapping, which is not needed here): stubbed out."""
    sys.path.insert(0, checkout)
    sys.modules["bitfusion.src.simulator.loop_stack"] = types.ModuleType("loop_stack_unused")
    sys.modules["bitfusion.src.simulator.loop_stack"].LoopStack = None
    from bitfusion.src.optimizer import optimizer
    from bitfusion.src.simulator.accelerator import Accelerator

    return optimizer, Accelerator


def main(checkout: str) -> None:
    optimizer, Accelerator = load_simulator(checkout)

    sys.stdout.write("# Bit Fusion authors' optimizer (github.com/hsharma35/bitfusion @04ec1c8), run by "
                     "benchmarks/peers/bitfusion/run_bitfusion_sim.py; batch 16, 8-bit max / 2-bit min precision\n")
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["N", "M", "bandwidth_bits_per_cycle", "wbuf_bytes", "ibuf_bytes", "obuf_bytes", "network",
                     "layer", "cycles", "memory_wait_cycles", "dram_read_bits", "dram_write_bits"])
    for n, m, bandwidth, wbuf, ibuf, obuf in CONFIGS:
        acc = Accelerator(n, m, 8, 2, {"wgt": wbuf, "act": ibuf, "out": obuf}, bandwidth, 500_000_000)
        for bench in BENCHMARKS:
            path = NETWORKS / f"bitfusion_{bench}.yaml"
            network = next(line for line in path.read_text().splitlines() if line.startswith("name:"))
            network = ast.literal_eval(network.split(":", 1)[1].strip())
            for name, *shape in layers(path):
                stats = best_stats(optimizer, acc, *shape)
                writer.writerow([n, m, bandwidth, wbuf, ibuf, obuf, network, name, stats.total_cycles,
                                 stats.mem_stall_cycles, stats.reads["dram"], stats.writes["dram"]])
                sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1])
