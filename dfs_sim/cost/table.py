"""The cost table: what every layer costs at every precision it can run at, for every batch size.

Precision cases per layer: one per trace option (gated layers follow their unit's decision; a
skip costs nothing), plus one more case, the full-precision reference. Layers with a fixed rule
cost the same in every case. Summing a unit's layers per case turns simulation into a gather.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dfs_sim.cost.cache import cached_search
from dfs_sim.cost.compression import dram_ratio
from dfs_sim.cost.kernels import search_entries
from dfs_sim.cost.records import ADDITIVE, DATAFLOW_AUTO, ENTRY, HARDWARE, RESULT
from dfs_sim.errors import InputError
from dfs_sim.hardware.accelerators import MODELS
from dfs_sim.hardware.accelerators.base import KIND_CODES, Work
from dfs_sim.hardware.config import CONVENTIONS, DATAFLOWS, OBJECTIVES, HwConfig
from dfs_sim.limits import FULL_PRECISION_BITS
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
    buffer_names: tuple[str, ...]
    stored_bits: np.ndarray  # [layers, cases, 3] stored weight, activation and output bits (0: does not run)
    mapping: np.ndarray  # [layers, cases] RESULT records: the mapping of one batch of the largest size
    runs_at_bits: np.ndarray  # [cases, 2] the (weight, activation) widths the datapath really runs mapped_bits at
    bit_serial: str  # which operands the datapath streams bit by bit ("none", "activations", ...)
    costed: np.ndarray  # [batch sizes] bool: the group sizes costed (the others hold NaN)

    def metric(self, name: str) -> int:
        return self.metric_names.index(name)

    def per_input_columns(self, cost: np.ndarray) -> np.ndarray:
        """Collapse a cost array's metric axis to what the kernels track per input: cycles, energy, DRAM and
        SRAM bits (the order of dfs_sim.cost.aggregate's OUT_* columns)."""
        names = self.metric_names
        energy = [i for i, name in enumerate(names) if name.startswith("energy_")]
        dram = [self.metric("dram_read_bits"), self.metric("dram_write_bits")]
        sram = [self.metric(f"{buffer}_{way}_bits") for buffer in self.buffer_names for way in ("read", "write")]
        return np.ascontiguousarray(np.stack([cost[..., self.metric("cycles")], cost[..., energy].sum(-1),
                                              cost[..., dram].sum(-1), cost[..., sram].sum(-1)], axis=-1))


# DRAM traffic per operand (metric dram_<name>_bits), from the RESULT field of the same meaning.
DRAM_OPERAND_METRICS = {"weights_read": "dram_w_read", "inputs_read": "dram_i_read", "psums_read": "dram_o_read",
                        "outputs_write": "dram_o_write"}


def metric_names(hw: HwConfig) -> tuple[str, ...]:
    names = ["cycles", "compute_cycles", "stall_cycles", "dram_read_bits", "dram_write_bits"]
    names += [f"dram_{operand}_bits" for operand in DRAM_OPERAND_METRICS]
    for buffer in hw.buffers:
        names += [f"{buffer.name}_read_bits", f"{buffer.name}_write_bits"]
    names += ["ops", "energy_compute_pj"]
    names += [f"energy_{buffer.name}_pj" for buffer in hw.buffers]
    names += ["energy_dram_pj", "energy_static_pj"]
    return tuple(names)


def precision_cases(options, hw: HwConfig) -> tuple[np.ndarray, np.ndarray]:
    """Declared and hardware-mapped (weight, activation) bits for each option and the full reference."""
    declared = [(o.weight_bits, o.act_bits) for o in options] + [(FULL_PRECISION_BITS, FULL_PRECISION_BITS)]
    full = [o.full_precision for o in options] + [True]
    mapped = []
    for (w, a), is_full in zip(declared, full):
        if is_full and hw.precision.full_precision == "native":
            w, a = hw.precision.max_bits, hw.precision.max_bits
        mapped.append((w, a))
    return np.array(declared, dtype=np.int64), np.array(mapped, dtype=np.int64)


def build_cost_table(network: Network, options, hw: HwConfig, max_batch: int, source: str = "",
                     batch_sizes=None) -> CostTable:
    """Every layer's cost at every case, for groups of 1 to max_batch inputs; with `batch_sizes`, only for
    groups of those sizes and of max_batch (the others hold NaN, so that no sum can use them unnoticed)."""
    network = MODELS[hw.model].array_network(hw, network)  # e.g. a stem relaid for the lanes
    declared, mapped = precision_cases(options, hw)
    n_cases = len(declared)
    full_case = n_cases - 1
    layers = network.layers
    n_layers = len(layers)
    batches = np.arange(1, max_batch + 1, dtype=np.int64)
    costed = np.ones(max_batch, dtype=bool) if batch_sizes is None else np.isin(batches, batch_sizes)
    costed[-1] = True  # the mapping below is that of a batch of max_batch

    # Per layer and case: which bits it runs at (0 = does not run).
    run_bits = np.zeros((n_layers, n_cases, 2), dtype=np.int64)
    for i, layer in enumerate(layers):
        run_bits[i] = layer.case_bits(mapped)
    _check_widths(run_bits, hw, declared, options, source)

    # One entry per (layer, case, batch) that runs.
    li, ci, bi = np.nonzero(np.broadcast_to((run_bits[:, :, :1] > 0) & costed, (n_layers, n_cases, len(batches))))
    weights_resident = hw.residency("weights") == "always" or (
        hw.residency("weights") == "auto" and resident_weight_bits(network, run_bits, hw) <= _capacity(hw, "weights"))
    out_bits = output_storage_bits(network, run_bits, hw)
    values, found = cost_entries(network, hw, li, run_bits[li, ci, 0], run_bits[li, ci, 1], out_bits[li, ci],
                                 batches[bi], weights_resident, source)
    names = metric_names(hw)
    layer_cost = np.zeros((n_layers, n_cases, len(batches), len(names)))
    layer_cost[:, :, ~costed] = np.nan
    layer_cost[li, ci, bi] = values
    largest = bi == len(batches) - 1
    mapping = np.zeros((n_layers, n_cases), dtype=RESULT)
    mapping[li[largest], ci[largest]] = found[largest]
    runs = run_bits[..., 1] > 0
    stored_bits = np.stack([np.where(runs, _storage_bits(hw, run_bits[..., 0], "weights"), 0),
                            np.where(runs, _storage_bits(hw, run_bits[..., 1], "activations"), 0), out_bits], axis=-1)

    unit_of = network.column("unit")
    follows = np.array([layer.follows_unit for layer in layers])
    unit_cost = np.zeros((network.n_units, n_cases, len(batches), len(names)))
    for u in range(network.n_units):
        unit_cost[u] = layer_cost[(unit_of == u) & follows].sum(axis=0)
    base_cost = layer_cost[~follows][:, 0].sum(axis=0)  # fixed-rule layers cost the same in every case
    model = MODELS[hw.model]
    runs_at = np.stack(model.effective_bits(hw, mapped[:, 0], mapped[:, 1]), axis=-1).astype(np.int64)
    return CostTable(names, layer_cost, unit_cost, base_cost, declared, mapped, full_case, bool(weights_resident),
                     tuple(b.name for b in hw.buffers), stored_bits, mapping, runs_at, model.serial, costed)


def output_storage_bits(network: Network, run_bits: np.ndarray, hw: HwConfig) -> np.ndarray:
    """[layers, cases]: the bits at which each layer's output is stored (0 where it does not run).

    An output is stored as its consumer, the next layer, stores its input activations. Inside a gated
    block (both layers follow the unit's decision) that is the same case's width; across any other
    boundary the consumer's width is known only per input, so the output is stored at the widest width the
    consumer runs at in any case (for a fixed- or full-precision consumer, its own). The network's last
    layer writes its result at array.output_bits, and so does every layer under Bit Fusion's simulator's
    conventions."""
    n_layers, n_cases = run_bits.shape[:2]
    stored_a = np.where(run_bits[..., 1] > 0, _storage_bits(hw, run_bits[..., 1], "activations"), 0)
    out = np.full((n_layers, n_cases), hw.array.output_bits, dtype=np.int64)
    if hw.mapping.conventions == "bitfusion-sim":
        return np.where(run_bits[..., 1] > 0, out, 0)
    layers = network.layers
    for i in range(n_layers - 1):
        here, after = layers[i], layers[i + 1]
        if here.precision == "unit" and after.precision == "unit" and here.unit == after.unit:
            out[i] = stored_a[i + 1]
        else:
            out[i] = stored_a[i + 1].max()
    return np.where(run_bits[..., 1] > 0, out, 0)


def cost_entries(network: Network, hw: HwConfig, layer_index, store_w, store_a, store_out, batch,
                 weights_resident: bool, source: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Metrics (metric_names order) and RESULT records of each (layer, stored weight, activation and output
    bits, batch) entry."""
    entries, ops = build_entries(network, hw, layer_index, store_w, store_a, store_out, batch, weights_resident)
    groups = network.column("groups")[layer_index]
    found = search(entries, hw)
    if not np.all(np.isfinite(found["cycles"])):
        bad = int(np.argmax(~np.isfinite(found["cycles"])))
        layer = network.layers[int(layer_index[bad])]
        raise InputError(hw.path, "buffers", f"no tiling of layer '{layer.name}' at {int(store_w[bad])}/"
                                             f"{int(store_a[bad])} bits, batch {int(batch[bad])}, fits the buffers"
                                             f"{' (' + source + ')' if source else ''}")
    for field in ADDITIVE:
        found[field] *= groups  # a grouped conv runs its groups one after another

    names = metric_names(hw)
    out = np.zeros((len(batch), len(names)))
    for name in ("cycles", "compute_cycles", "stall_cycles", "dram_read_bits", "dram_write_bits"):
        out[:, names.index(name)] = found[name]
    for operand, field in DRAM_OPERAND_METRICS.items():
        out[:, names.index(f"dram_{operand}_bits")] = found[field]
    traffic = {"weights": (found["w_read"], found["w_write"]), "inputs": (found["i_read"], found["i_write"]),
               "outputs": (found["o_read"], found["o_write"])}
    for buffer in hw.buffers:
        reads = sum(traffic[op][0] for op in buffer.holds)
        writes = sum(traffic[op][1] for op in buffer.holds)
        out[:, names.index(f"{buffer.name}_read_bits")] = reads
        out[:, names.index(f"{buffer.name}_write_bits")] = writes
        out[:, names.index(f"energy_{buffer.name}_pj")] = reads * buffer.read_pj_per_bit + writes * buffer.write_pj_per_bit
    out[:, names.index("ops")] = ops
    out[:, names.index("energy_compute_pj")] = (ops * hw.compute.energy_pj_per_op
                                                + found["compute_cycles"] * hw.compute_pj_per_cycle)
    out[:, names.index("energy_dram_pj")] = ((found["dram_read_bits"] + found["dram_write_bits"])
                                             * hw.dram.energy_pj_per_bit)
    out[:, names.index("energy_static_pj")] = found["cycles"] * static_pj_per_cycle(hw)
    return out, found


def build_entries(network: Network, hw: HwConfig, layer_index, store_w, store_a, store_out, batch,
                  weights_resident: bool) -> tuple[np.ndarray, np.ndarray]:
    """ENTRY records of each (layer, stored weight, activation and output bits, batch), and their ops."""
    model = MODELS[hw.model]
    layers = network.layers
    col = {name: network.column(name)[layer_index] for name in
           ("c_in", "c_out", "groups", "h_in", "w_in", "h_out", "w_out", "kernel", "stride", "padding", "macs",
            "weights")}
    kind = np.array([KIND_CODES[layers[i].kind] for i in layer_index], dtype=np.int64)
    reads_input = np.array([network.reads_network_input(i) for i in range(len(layers))], dtype=bool)[layer_index]
    last = np.asarray(layer_index) == len(layers) - 1
    eff_w, eff_a = model.effective_bits(hw, store_w, store_a)
    work = Work(kind=kind, macs=col["macs"] * batch, n=batch, w_bits=eff_w, a_bits=eff_a)
    array = model.array_mapping(hw, work)
    ops = model.ops(hw, work).astype(np.float64)

    w_bits = _storage_bits(hw, store_w, "weights")
    a_bits = _storage_bits(hw, store_a, "activations")
    o_bits = np.asarray(store_out, dtype=np.int64)
    groups = col["groups"]
    in_elems = col["c_in"] * col["h_in"] * col["w_in"]
    out_elems = col["c_out"] * col["h_out"] * col["w_out"]
    if hw.residency("activations") == "auto":
        on_chip = _activations_fit(hw, batch * in_elems * a_bits, batch * out_elems * o_bits)
    else:
        on_chip = np.full(len(batch), hw.residency("activations") == "always")
    entries = np.zeros(len(batch), dtype=ENTRY)
    entries["batch"] = batch
    for field, column in (("oh", "h_out"), ("ow", "w_out"), ("h_in", "h_in"), ("w_in", "w_in"), ("kernel", "kernel"),
                          ("stride", "stride"), ("padding", "padding")):
        entries[field] = col[column]
    entries["ic"] = col["c_in"] // groups
    entries["oc"] = col["c_out"] // groups
    entries["im2col"] = reads_input & (kind == KIND_CODES["conv"]) & (hw.mapping.im2col == "input-layers")
    entries["is_pool"] = kind == KIND_CODES["pool"]
    entries["in_elems"] = in_elems
    entries["out_elems"] = out_elems
    entries["pool_ops"] = col["macs"]
    entries["w_bits"], entries["a_bits"], entries["out_bits"] = w_bits, a_bits, o_bits
    entries["psum_bits"] = hw.array.output_bits
    for field in ("u_k", "u_c", "u_p", "u_n", "cycles_per_step", "passes", "fill_per_pixel_fold",
                  "fill_per_reduction_fold"):
        entries[field] = getattr(array, field)
    entries["w_dram"] = 0.0 if weights_resident else 1.0
    entries["i_dram"] = reads_input | ~on_chip
    entries["o_dram"] = last | ~on_chip
    # Feature maps the accelerator wrote itself may be coded on the DRAM link; the network input is not.
    entries["in_code"] = np.where(reads_input, 1.0, dram_ratio(
        hw.dram.fmap_compression, network.column("input_density")[layer_index], a_bits, hw.dram.rlc_run_bits,
        hw.dram.rlc_word_bits))
    entries["out_code"] = dram_ratio(hw.dram.fmap_compression, network.column("output_density")[layer_index], o_bits,
                                     hw.dram.rlc_run_bits, hw.dram.rlc_word_bits)
    return entries, ops


def search(entries: np.ndarray, hw: HwConfig) -> np.ndarray:
    """RESULT records of ENTRY records; many entries repeat (same shape, bits, batch and residency), so each
    distinct one is searched once, or read back from the search cache (dfs_sim/cost/cache.py) when one is on."""
    distinct, inverse = distinct_entries(entries)
    hardware = hardware_record(hw)
    found = cached_search(distinct, hardware, lambda todo, out: search_entries(todo, hardware, out))
    return found[inverse]


def distinct_entries(entries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct ENTRY records (in byte order) and each entry's index among them."""
    distinct, inverse = np.unique(np.ascontiguousarray(entries).view(np.dtype((np.void, ENTRY.itemsize))),
                                  return_inverse=True)
    return distinct.view(ENTRY), inverse.reshape(-1)


def static_pj_per_cycle(hw: HwConfig) -> float:
    return hw.static_mw / hw.clock_mhz * 1000.0  # mW / MHz = nJ per cycle


def hardware_record(hw: HwConfig) -> np.ndarray:
    """What every entry of the search shares, as a one-element HARDWARE array."""
    record = np.zeros(1, dtype=HARDWARE)
    names = [b.name for b in hw.buffers]
    for operand, key in (("weights", "w"), ("inputs", "i"), ("outputs", "o")):
        buffer = hw.buffer_for(operand)
        record[f"cap_{key}"] = _usable(buffer)  # shared by the operands it holds, tile by tile
        record[f"buf_{key}"] = names.index(buffer.name)
        record[f"e_{key}_read"] = buffer.read_pj_per_bit
        record[f"e_{key}_write"] = buffer.write_pj_per_bit
    record["dram_bits_per_cycle"] = hw.dram.bandwidth_bits_per_cycle
    record["dataflow"] = DATAFLOW_AUTO if hw.mapping.dataflow == "auto" else DATAFLOWS.index(hw.mapping.dataflow) - 1
    record["objective"] = OBJECTIVES.index(hw.mapping.objective)
    record["e_dram"] = hw.dram.energy_pj_per_bit
    record["e_cycle"] = hw.compute_pj_per_cycle
    record["e_static"] = static_pj_per_cycle(hw)
    record["vector_lanes"] = hw.vector_lanes
    record["conventions"] = CONVENTIONS.index(hw.mapping.conventions)
    return record


def _activations_fit(hw: HwConfig, in_bits: np.ndarray, out_bits: np.ndarray) -> np.ndarray:
    """Whether a layer's inputs and outputs both stay on chip (so neither crosses DRAM)."""
    inputs, outputs = hw.buffer_for("inputs"), hw.buffer_for("outputs")
    if inputs.name == outputs.name:  # one buffer: together they get the activations' share of it
        return in_bits + out_bits <= _capacity(hw, "inputs") + _capacity(hw, "outputs")
    return (in_bits <= _capacity(hw, "inputs")) & (out_bits <= _capacity(hw, "outputs"))


def _check_widths(run_bits, hw: HwConfig, declared, options, source: str) -> None:
    if hw.precision.wider != "error":
        return
    _, too_wide_cases = np.nonzero(run_bits.max(axis=2) > hw.precision.max_bits)
    for case in too_wide_cases:
        if case < len(options):
            what = f"option '{options[case].name}' ({declared[case][0]}/{declared[case][1]} bits)"
        else:
            what = f"the full-precision reference ({FULL_PRECISION_BITS}/{FULL_PRECISION_BITS} bits)"
        raise InputError(hw.path, "precision.max_bits",
                         f"runs at most {hw.precision.max_bits} bits (precision.wider: error) but {what} needs more"
                         f"{' in ' + source if source else ''}; set precision.full_precision: native or "
                         f"wider: multi-pass")


def _storage_bits(hw: HwConfig, bits: np.ndarray, what: str) -> np.ndarray:
    layout = hw.storage.weights if what == "weights" else hw.storage.activations
    if layout == "fixed":
        return np.maximum(bits, hw.storage.fixed_bits)
    return bits  # bit-plane fetches b planes; packed stores b bits


def _usable(buffer) -> float:
    return buffer.size_bits / (2 if buffer.double_buffered else 1)


def _capacity(hw: HwConfig, operand: str) -> float:
    """An operand's even share of its buffer (for whole-layer residency decisions)."""
    buffer = hw.buffer_for(operand)
    return _usable(buffer) / len(buffer.holds)


def resident_weight_bits(network: Network, run_bits: np.ndarray, hw: HwConfig) -> int:
    """Bits needed to keep every layer's weights on chip for every precision it may run at.

    Bit-plane and fixed layouts keep one copy at the widest width; packed keeps one copy per width.
    """
    total = 0
    for i, layer in enumerate(network.layers):
        widths = sorted({int(w) for w in run_bits[i, :, 0] if w > 0})
        if not widths:
            continue
        if hw.storage.weights == "packed":
            need = sum(widths)
        elif hw.storage.weights == "fixed":
            need = max(max(widths), hw.storage.fixed_bits)
        else:
            need = max(widths)
        total += layer.weights * need
    return total
