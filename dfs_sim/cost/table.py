"""The cost table: what every layer costs at every precision it can run at, for every batch size.

Precision cases per layer: one per trace option (gated layers follow their unit's decision; a
skip costs nothing), plus one more case, the full-precision reference. Layers with a fixed rule
cost the same in every case. Summing a unit's layers per case turns simulation into a gather.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dfs_sim.cost.dataflow import MoveParams, data_movement
from dfs_sim.errors import InputError
from dfs_sim.hardware.accelerators import MODELS
from dfs_sim.hardware.accelerators.base import KIND_CODES, Work
from dfs_sim.hardware.config import HwConfig
from dfs_sim.workload.network import Network


@dataclass
class CostTable:
    metric_names: tuple[str, ...]
    layer_cost: np.ndarray  # [layers, cases, batch sizes, metrics], cost of one batch of r inputs
    unit_cost: np.ndarray  # [units, cases, batch sizes, metrics], summed over the unit's gated layers
    base_cost: np.ndarray  # [batch sizes, metrics], every layer that does not follow a decision
    case_bits: np.ndarray  # [cases, 2] declared (weight, activation) bits per case
    mapped_bits: np.ndarray  # [cases, 2] bits after the hardware's full-precision mapping
    full_case: int  # index of the full-precision reference case
    weights_resident: bool

    def metric(self, name: str) -> int:
        return self.metric_names.index(name)


def metric_names(hw: HwConfig) -> tuple[str, ...]:
    names = ["cycles", "compute_cycles", "stall_cycles", "dram_read_bits", "dram_write_bits"]
    for buffer in hw.buffers:
        names += [f"{buffer.name}_read_bits", f"{buffer.name}_write_bits"]
    names += ["ops", "energy_compute_pj"]
    names += [f"energy_{buffer.name}_pj" for buffer in hw.buffers]
    names += ["energy_dram_pj", "energy_static_pj"]
    return tuple(names)


def precision_cases(options, hw: HwConfig) -> tuple[np.ndarray, np.ndarray]:
    """Declared and hardware-mapped (weight, activation) bits for each option and the full reference."""
    declared = [(o.weight_bits, o.act_bits) for o in options] + [(32, 32)]
    full = [o.full_precision for o in options] + [True]
    mapped = []
    for (w, a), is_full in zip(declared, full):
        if is_full and hw.full_precision == "native":
            w, a = hw.max_bits, hw.max_bits
        mapped.append((w, a))
    return np.array(declared, dtype=np.int64), np.array(mapped, dtype=np.int64)


def build_cost_table(network: Network, options, hw: HwConfig, max_batch: int, source: str = "") -> CostTable:
    model = MODELS[hw.model]
    declared, mapped = precision_cases(options, hw)
    n_cases = len(declared)
    full_case = n_cases - 1
    layers = network.layers
    n_layers = len(layers)
    batches = np.arange(1, max_batch + 1, dtype=np.int64)

    # Per layer and case: which bits it runs at (0 = does not run).
    run_bits = np.zeros((n_layers, n_cases, 2), dtype=np.int64)
    for i, layer in enumerate(layers):
        if layer.precision == "unit":
            run_bits[i] = mapped
        elif layer.precision == "fixed":
            run_bits[i] = (layer.w_bits, layer.a_bits)
        else:
            run_bits[i] = mapped[full_case]
    _check_widths(run_bits, hw, declared, options, source)

    # One entry per (layer, case, batch) that runs.
    li, ci, bi = np.nonzero(np.broadcast_to(run_bits[:, :, :1] > 0, (n_layers, n_cases, len(batches))))
    store_w = run_bits[li, ci, 0]
    store_a = run_bits[li, ci, 1]
    eff_w, eff_a = model.effective_bits(hw, store_w, store_a)
    col = {name: network.column(name) for name in ("c_in", "c_out", "groups", "h_in", "w_in", "h_out", "w_out",
                                                  "kernel", "macs", "weights")}
    kind = np.array([KIND_CODES[k] for k in network.column("kind")], dtype=np.int64)
    n = batches[bi]
    groups = col["groups"][li]
    work = Work(kind=kind[li], k=col["c_out"][li] // groups, c=col["c_in"][li] // groups, groups=groups,
                p=col["h_out"][li] * col["w_out"][li], taps=col["kernel"][li] ** 2, n=n,
                macs=col["macs"][li] * n, w_bits=eff_w, a_bits=eff_a)
    compute_cycles, ops = model.compute(hw, work)

    weights_resident = resident_weight_bits(network, run_bits, hw) <= _capacity(hw, "weights")
    params = MoveParams.from_config(hw, weights_resident)
    is_first = (li == 0).astype(np.int64)
    is_last = (li == n_layers - 1).astype(np.int64)
    values = data_movement(
        params, compute_cycles.astype(np.float64), ops.astype(np.float64), work.k * work.groups, work.c * work.groups,
        work.p, work.taps, n, col["weights"][li], col["c_in"][li] * col["h_in"][li] * col["w_in"][li],
        col["c_out"][li] * col["h_out"][li] * col["w_out"][li], work.macs, _storage_bits(hw, store_w, "weights"),
        _storage_bits(hw, store_a, "activations"), is_first, is_last, (kind[li] == KIND_CODES["pool"]).astype(np.int64),
    )
    names = metric_names(hw)
    layer_cost = np.zeros((n_layers, n_cases, len(batches), len(names)))
    layer_cost[li, ci, bi] = values

    unit_of = network.column("unit")
    follows = np.array([layer.precision == "unit" for layer in layers])
    unit_cost = np.zeros((network.n_units, n_cases, len(batches), len(names)))
    for u in range(network.n_units):
        unit_cost[u] = layer_cost[(unit_of == u) & follows].sum(axis=0)
    base_cost = layer_cost[~follows][:, 0].sum(axis=0)  # fixed-rule layers cost the same in every case
    return CostTable(names, layer_cost, unit_cost, base_cost, declared, mapped, full_case, bool(weights_resident))


def _check_widths(run_bits, hw: HwConfig, declared, options, source: str) -> None:
    if hw.wider != "error":
        return
    too_wide = np.nonzero(run_bits.max(axis=2) > hw.max_bits)
    for layer_index, case in zip(*too_wide):
        if case < len(options):
            what = f"option '{options[case].name}' ({declared[case][0]}/{declared[case][1]} bits)"
        else:
            what = "the full-precision reference (32/32 bits)"
        raise InputError(hw.path, "precision.max_bits",
                         f"runs at most {hw.max_bits} bits (precision.wider: error) but {what} needs more"
                         f"{' in ' + source if source else ''}; set precision.full_precision: native or "
                         f"wider: multi-pass")


def _storage_bits(hw: HwConfig, bits: np.ndarray, what: str) -> np.ndarray:
    layout = hw.weight_layout if what == "weights" else hw.activation_layout
    if layout == "fixed":
        return np.maximum(bits, hw.fixed_bits)
    return bits  # bit-plane fetches b planes; packed stores b bits


def _capacity(hw: HwConfig, operand: str) -> float:
    buffer = hw.buffer_for(operand)
    usable = buffer.size_bits / (2 if buffer.double_buffered else 1)
    return usable / len(buffer.holds)


def resident_weight_bits(network: Network, run_bits: np.ndarray, hw: HwConfig) -> int:
    """Bits needed to keep every layer's weights on chip for every precision it may run at.

    Bit-plane and fixed layouts keep one copy at the widest width; packed keeps one copy per width.
    """
    total = 0
    for i, layer in enumerate(network.layers):
        widths = sorted({int(w) for w in run_bits[i, :, 0] if w > 0})
        if not widths:
            continue
        if hw.weight_layout == "packed":
            need = sum(widths)
        elif hw.weight_layout == "fixed":
            need = max(max(widths), hw.fixed_bits)
        else:
            need = max(widths)
        total += layer.weights * need
    return total
