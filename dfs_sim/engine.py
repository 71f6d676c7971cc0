"""simulate(): a trace on an accelerator -> per-input, per-layer and summary costs."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property

import numba
import numpy as np
import pandas as pd

from dfs_sim.cost import aggregate, kernels
from dfs_sim.cost.table import CostTable, build_cost_table
from dfs_sim.errors import InputError
from dfs_sim.hardware.config import HwConfig, load_hw
from dfs_sim.limits import FULL_PRECISION_BITS
from dfs_sim.reference import FULL, Reference, parse_reference, reference_network, static_default
from dfs_sim.report.format import summary_html, summary_rows
from dfs_sim.report.layers import per_layer_case_frame, per_layer_frame
from dfs_sim.report.summary import build_summary
from dfs_sim.trace import Trace, load_trace
from dfs_sim.workload.network import Network

CHUNK_INPUTS = 1 << 18  # inputs simulated at a time: bounds memory on memory-mapped traces
# Below this many inputs one thread beats several: the kernels take well under a millisecond and
# waking threads costs more (much more on a busy machine). Results never depend on the count.
PARALLEL_MIN_INPUTS = 1 << 16


@dataclass
class SimResult:
    network: Network
    source: str  # the trace's file, or the static network's name
    options: tuple  # the trace's options; none for a static network
    hw: HwConfig
    table: CostTable
    per_input: pd.DataFrame
    totals: np.ndarray  # [metrics]: sum over all inputs
    layer_case_totals: np.ndarray  # [layers, cases, metrics]: sum over all inputs, by the case each layer ran at
    layer_runs: np.ndarray  # [layers, cases]: inputs that ran each layer at each case
    full_precision: np.ndarray  # [metrics]: per-input cost of the all-full-precision run
    full_precision_latency_cycles: float
    batch: int
    policy: str
    absolute_budgets: dict = field(default_factory=dict)
    reference: Reference = FULL  # what "% of reference" compares against (dfs_sim/reference.py)
    reference_cost: np.ndarray | None = None  # [metrics]: per-input cost of the reference run
    reference_latency_cycles: float = 0.0
    trace: Trace | None = None  # the simulated trace; None for a static network (simulate_network)

    @property
    def n_inputs(self) -> int:
        return len(self.per_input)

    @property
    def name(self) -> str:
        return self.network.name if self.trace is None else self.trace.name

    @property
    def budget_pct(self) -> float | None:
        """The budget the trace's model was trained for, in budget_metric (none for a static network)."""
        return None if self.trace is None else self.trace.budget_pct

    @property
    def budget_metric(self) -> str | None:
        """What that budget counts: "computation" (the proxy) or "METRIC@HW" (Trace.budget_metric)."""
        return None if self.trace is None else self.trace.budget_metric

    def mean(self, metric: str) -> float:
        return float(self.totals[self.table.metric(metric)] / max(self.n_inputs, 1))

    @property
    def layer_totals(self) -> np.ndarray:
        """[layers, metrics]: sum over all inputs."""
        return self.layer_case_totals.sum(axis=1)

    @cached_property
    def per_layer(self) -> pd.DataFrame:
        return per_layer_frame(self)

    @cached_property
    def per_layer_cases(self) -> pd.DataFrame:
        """One row per layer and precision case it ran at, with its mapping: what `--per-layer` prints."""
        return per_layer_case_frame(self)

    @cached_property
    def summary(self) -> dict:
        return build_summary(self)

    def __repr__(self) -> str:
        s = self.summary
        energy = s["metrics"]["energy_uj"]
        accuracy = "" if s["accuracy"] is None else f", accuracy {s['accuracy']:.2f} %"
        pct = s["reference"]["metrics"]["energy_uj"]["pct"]
        return (f"<SimResult {self.name} on {self.hw.name}: {self.n_inputs:,} inputs, batch {self.batch}, "
                f"energy {energy['mean']:.4g} µJ/input = {'n/a' if pct is None else f'{pct:.1f}'} % of "
                f"{self.reference.label(self.hw)}{accuracy}>")

    def _repr_html_(self) -> str:
        return summary_html(self.summary)

    @property
    def summary_frame(self) -> pd.DataFrame:
        """The summary as (section, name, value) rows: what `dfs-sim run --format csv` prints."""
        return pd.DataFrame(summary_rows(self.summary), columns=["section", "name", "value"])


def simulate(trace: Trace | str, hw: HwConfig | str, *, batch: int | None = None, policy: str | None = None,
             budgets: dict | None = None, reference: Reference | str | None = None) -> SimResult:
    """Simulate every input of `trace` on `hw`, `batch` inputs at a time under `policy` (default: the config's
    `batch:` section); `reference` ('full', 'native' or 'W/A' such as '8/8', default full) is what "% of
    reference" compares against."""
    reference = parse_reference(reference) or FULL
    if not isinstance(trace, Trace):
        trace = load_trace(trace)
    if not isinstance(hw, HwConfig):
        hw = load_hw(hw)
    run = hw.batch.run(batch, policy)
    size, mode = run.size, run.policy
    n = trace.n_inputs
    n_units = trace.network.n_units
    # Without gated units every batch holds `size` inputs but the last (n % size), whatever the policy: only
    # those group sizes are costed (a static network's run is one batch). With units, bucketed groups take any size.
    formed = (size, n % size) if n_units == 0 else None
    table = build_cost_table(trace.network, trace.options, hw, size, source=trace.path, batch_sizes=formed)
    unit_small = table.per_input_columns(table.unit_cost)
    base_small = table.per_input_columns(table.base_cost)
    rank = _width_rank(table.case_bits)
    policy_code = aggregate.LOCKSTEP if mode == "lockstep" else aggregate.BUCKETED  # grouped batches bucketed
    n_cases = table.case_bits.shape[0]
    out = np.zeros((n, aggregate.N_OUT))
    hist = np.zeros((n_units, n_cases, size), dtype=np.int64)
    batch_sizes = np.zeros(size, dtype=np.int64)
    comp = np.zeros(n)
    bitops = np.zeros(n)
    comp_table, bitops_table, bitops_base, bitops_full = _proxy_tables(trace, table)
    budget_table = _budget_table(trace, table)
    budget_cost = None if budget_table is None else np.zeros(n)
    chunk = max(size, CHUNK_INPUTS // size * size)
    # grouped: the queue is ordered by decision vector (stably, so ties keep trace order) and batched bucketed;
    # every per-input column is computed in that order and put back in trace order below.
    order = grouped_order(trace.decisions) if mode == "grouped" else None
    queued = trace.decisions if order is None else trace.decisions[order]
    with kernel_threads(n):
        for start in range(0, n, chunk):
            decisions = kernels.read_only(np.ascontiguousarray(queued[start:start + chunk], dtype=np.uint8))
            rows = slice(start, start + chunk)
            kernels.per_input_costs(decisions, size, policy_code, rank, unit_small, base_small, out[rows])
            kernels.execution_counts(decisions, size, policy_code, rank, n_cases, hist, batch_sizes)
            if n_units:
                kernels.gather_sum(decisions, comp_table, 0.0, comp[rows])
            if budget_cost is not None:
                kernels.gather_sum(decisions, budget_table, 0.0, budget_cost[rows])
            kernels.gather_sum(decisions, bitops_table, bitops_base, bitops[rows])

    if order is not None:
        for column in (out, comp, bitops, budget_cost):
            if column is not None:
                column[order] = column.copy()
    sizes = table.costed
    if hist[..., ~sizes].any() or batch_sizes[~sizes].any():
        raise RuntimeError("a group size was formed that the cost table did not cost")
    totals = (np.einsum("ucr,ucrm->m", hist[..., sizes], table.unit_cost[:, :, sizes])
              + np.einsum("r,rm->m", batch_sizes[sizes], table.base_cost[sizes]))
    runs = _layer_runs(trace, table, hist, batch_sizes)
    layer_case_totals = np.einsum("lcr,lcrm->lcm", runs[..., sizes], table.layer_cost[:, :, sizes])
    layer_runs = np.einsum("lcr,r->lc", runs, np.arange(1, size + 1))
    per_input = _per_input_frame(out, comp / n_units * 100 if n_units else np.full(n, np.nan),
                                 bitops / bitops_full * 100, hw)
    if budget_cost is not None:  # the budget's own metric, e.g. energy@bitfusion_physical for the gated blocks
        per_input["budget_metric_pct"] = budget_cost / n_units * 100
    if trace.labels is not None:
        per_input["label"] = np.asarray(trace.labels)
    if trace.predictions is not None:
        per_input["prediction"] = np.asarray(trace.predictions)
    if trace.has_accuracy:
        per_input["correct"] = per_input["label"] == per_input["prediction"]
    return _result(trace.network, trace.path, trace.options, hw, table, per_input, totals, layer_case_totals,
                   layer_runs, size, mode, budgets, reference, trace=trace)


def _per_input_frame(out: np.ndarray, computation_pct: np.ndarray, bitops_pct: np.ndarray, hw: HwConfig):
    clock_hz = hw.clock_mhz * 1e6
    return pd.DataFrame({
        "cycles": out[:, aggregate.OUT_CYCLES],
        "latency_us": out[:, aggregate.OUT_LATENCY] / clock_hz * 1e6,
        "energy_uj": out[:, aggregate.OUT_ENERGY] * 1e-6,
        "dram_bytes": out[:, aggregate.OUT_DRAM] / 8,
        "sram_bytes": out[:, aggregate.OUT_SRAM] / 8,
        "computation_pct": computation_pct,
        "bitops_pct": bitops_pct,
    })


def _result(network, source, options, hw, table, per_input, totals, layer_case_totals, layer_runs, size, mode,
            budgets, reference, trace=None) -> SimResult:
    """The result, with the full-precision run and the reference run ("% of reference") of the same inputs."""
    n = len(per_input)
    full, full_latency = _full_precision(table, n, size)
    reference_cost, reference_latency = full, full_latency
    different = reference_network(network, reference, hw)
    if different is not None:
        reference_cost, reference_latency = _full_precision(
            build_cost_table(different, options, hw, size, source=source, batch_sizes=(size, n % size)), n, size)
    return SimResult(network, source, options, hw, table, per_input, totals, layer_case_totals, layer_runs, full,
                     full_latency, size, mode, dict(budgets or {}), reference=reference, reference_cost=reference_cost,
                     reference_latency_cycles=reference_latency, trace=trace)


def simulate_network(network: Network, hw: HwConfig | str, *, batch: int | None = None, policy: str | None = None,
                     budgets: dict | None = None, reference: Reference | str | None = None) -> SimResult:
    """Run a static network (its layers' own precisions, no gated units) on `hw` for one batch.
    `reference` defaults to the network's own highest declared precision (dfs_sim/reference.py).

    Every input of the batch takes the same path, so this reads the batch's cost from the cost table
    directly: no decisions, no options, no per-input kernels (the policy cannot change the cost)."""
    if network.n_units:
        raise InputError(network.name, "units", "a network with gated units needs a trace (simulate)")
    if not isinstance(hw, HwConfig):
        hw = load_hw(hw)
    run = hw.batch.run(batch, policy)
    size = run.size
    table = build_cost_table(network, (), hw, size, source=network.name, batch_sizes=(size,))
    batch_cost = table.per_input_columns(table.base_cost)[size - 1]  # cycles, energy, DRAM, SRAM bits of the batch
    out = np.zeros((size, aggregate.N_OUT))
    out[:, [aggregate.OUT_CYCLES, aggregate.OUT_ENERGY, aggregate.OUT_DRAM, aggregate.OUT_SRAM]] = batch_cost / size
    out[:, aggregate.OUT_LATENCY] = batch_cost[0]
    bitops, bitops_full = _static_bitops(network, table)
    per_input = _per_input_frame(out, np.full(size, np.nan), np.full(size, bitops / bitops_full * 100), hw)
    layer_case_totals = table.layer_cost[:, :1, size - 1]  # every layer ran once, in the one case
    layer_runs = np.full((len(table.layer_cost), 1), float(size))
    return _result(network, network.name, (), hw, table, per_input, table.base_cost[size - 1], layer_case_totals,
                   layer_runs, size, run.policy, budgets, parse_reference(reference) or static_default(network))


@contextmanager
def kernel_threads(n_inputs: int):
    """Run the kernels on one thread for small traces, on all of numba's threads for big ones."""
    threads = numba.get_num_threads()
    numba.set_num_threads(threads if n_inputs >= PARALLEL_MIN_INPUTS else 1)
    try:
        yield
    finally:
        numba.set_num_threads(threads)


def grouped_order(decisions: np.ndarray) -> np.ndarray:
    """The order in which the `grouped` policy queues inputs: by decision vector (lexicographic, first gated
    unit first), stably, so that inputs with the same vector keep their trace order and fill batches together."""
    decisions = np.asarray(decisions)
    if decisions.shape[1] == 0:
        return np.arange(len(decisions))
    return np.lexsort(decisions.T[::-1])


def _width_rank(case_bits: np.ndarray) -> np.ndarray:
    """Order cases from narrowest to widest by (w*a, w, a): lockstep runs a batch at the widest."""
    keys = [(int(w) * int(a), int(w), int(a), i) for i, (w, a) in enumerate(case_bits)]
    rank = np.empty(len(keys), dtype=np.int64)
    for position, key in enumerate(sorted(keys)):
        rank[key[3]] = position
    return rank


UNIT_COST_METRICS = ("energy", "cycles", "dram")


def unit_costs(network, options, hw: HwConfig | str, metric: str = "energy", *, batch: int | None = None) -> np.ndarray:
    """What each gated unit costs per input at each option on `hw`, from the cost table.

    Returns [units, options]. A cell is the unit's cost (its layers that follow the decision, at a
    batch of `batch` inputs, default the config's, in lockstep) divided by the mean over units of a
    unit's full-precision cost, so that the mean over units of the chosen cells is the gated
    blocks' cost as a share of their cost at full precision. `metric`: energy (all components),
    cycles, or dram (bits read and written). This is how a model trains against a real budget
    (`dfs-sim train --cost energy@bitfusion`).
    """
    if metric not in UNIT_COST_METRICS:
        raise InputError("--cost", None, f"unknown metric '{metric}' (use {', '.join(UNIT_COST_METRICS)})")
    if not isinstance(hw, HwConfig):
        hw = load_hw(hw)
    size = hw.batch.run(batch).size
    table = build_cost_table(network, options, hw, size)
    names = table.metric_names
    if metric == "energy":
        columns = [i for i, name in enumerate(names) if name.startswith("energy_")]
    elif metric == "cycles":
        columns = [table.metric("cycles")]
    else:
        columns = [table.metric("dram_read_bits"), table.metric("dram_write_bits")]
    per_input = table.unit_cost[:, :, size - 1][:, :, columns].sum(axis=2) / size  # [units, cases]
    reference = per_input[:, table.full_case].mean()
    if not reference > 0:
        raise InputError(hw.path, None, f"the gated units cost no {metric} at full precision")
    return per_input[:, :len(options)] / reference


def _proxy_tables(trace: Trace, table: CostTable):
    """Per-unit, per-case tables of the DFS computation cost and the MAC-weighted bit-ops."""
    network = trace.network
    n_cases = table.case_bits.shape[0]
    comp = np.zeros((max(network.n_units, 1), n_cases))
    for c, option in enumerate(trace.options):
        comp[:, c] = option.computation_cost
    comp[:, -1] = 1.0
    bitops = np.zeros((max(network.n_units, 1), n_cases))
    for layer in network.layers:
        if layer.follows_unit:
            bits = layer.case_bits(table.case_bits)
            bitops[layer.unit] += layer.macs * bits[:, 0] * bits[:, 1]
    base, full = _static_bitops(network, table)
    return comp, bitops, base, full


def _budget_table(trace: Trace, table: CostTable) -> np.ndarray | None:
    """Per-unit, per-case costs of a real-cost budget (Trace.budget_cost_table; full precision costs 1, as in
    training), or None when the budget is the proxy or the trace stores no table."""
    if trace.budget_cost_table is None:
        return None
    costs = np.ones((trace.network.n_units, table.case_bits.shape[0]))
    costs[:, :len(trace.options)] = trace.budget_cost_table
    return costs


def _static_bitops(network: Network, table: CostTable) -> tuple[float, float]:
    """MAC-weighted bit-ops of the layers that follow no unit, and of the whole network at full precision."""
    base = 0.0
    full = 0.0
    for layer in network.layers:
        full += layer.macs * FULL_PRECISION_BITS * FULL_PRECISION_BITS
        if not layer.follows_unit:
            bits = layer.case_bits(table.case_bits)
            base += layer.macs * bits[0, 0] * bits[0, 1]
    return base, full


def _layer_runs(trace: Trace, table: CostTable, hist: np.ndarray, batch_sizes: np.ndarray) -> np.ndarray:
    """[layers, cases, group sizes]: how often each layer ran. A gated layer ran as often as its unit did at
    each (case, group size); every other layer ran once per batch, in case 0 (its cost is the same in every
    case)."""
    runs = np.zeros(table.layer_cost.shape[:3])
    unit = trace.network.column("unit")
    follows = np.array([layer.follows_unit for layer in trace.network.layers])
    runs[follows] = hist[unit[follows]]
    runs[~follows, 0] = batch_sizes
    return runs


def _full_precision(table: CostTable, n: int, size: int):
    """Per-input mean cost, and per-batch latency, when every unit runs at full precision."""
    full_batch = table.unit_cost[:, table.full_case].sum(axis=0) + table.base_cost  # [B, metrics]
    n = max(n, 1)
    whole, rest = divmod(n, size)
    total = whole * full_batch[size - 1]
    if rest:
        total = total + full_batch[rest - 1]
    latency = full_batch[min(size, n) - 1, table.metric("cycles")]
    return total / n, float(latency)
