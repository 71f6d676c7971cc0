"""The summary that `dfs-sim run` prints; its JSON form is stable (docs/report-format.md)."""
from __future__ import annotations

import math

import numpy as np

from dfs_sim import __version__

SCHEMA = "dfs-sim-report/1"
PERCENTILES = (("p50", 50), ("p95", 95), ("p99", 99))
BUDGET_METRICS = ("cycles", "latency_us", "energy_uj", "dram_bytes", "sram_bytes", "computation_pct", "bitops_pct")


def _finite(value):
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


def metric_stats(values: np.ndarray, full_precision: float) -> dict:
    stats = {"mean": float(values.mean()) if len(values) else 0.0}
    quantiles = np.percentile(values, [q for _, q in PERCENTILES]) if len(values) else np.zeros(len(PERCENTILES))
    stats.update((name, float(value)) for (name, _), value in zip(PERCENTILES, quantiles))
    stats["max"] = float(values.max()) if len(values) else 0.0
    stats["full_precision"] = float(full_precision)
    stats["pct_of_full_precision"] = _finite(100.0 * stats["mean"] / full_precision) if full_precision else None
    return stats


def build_summary(result) -> dict:
    table, hw, network = result.table, result.hw, result.network
    frame = result.per_input
    clock_hz = hw.clock_mhz * 1e6
    cycles, energy_pj, dram_bits, sram_bits = table.per_input_columns(result.full_precision)
    energy_names = [name for name in table.metric_names if name.startswith("energy_")]
    fp_values = {
        "cycles": cycles,
        "latency_us": result.full_precision_latency_cycles / clock_hz * 1e6,
        "energy_uj": energy_pj * 1e-6,
        "dram_bytes": dram_bits / 8,
        "sram_bytes": sram_bits / 8,
    }
    metrics = {name: metric_stats(frame[name].to_numpy(), fp_values[name]) for name in fp_values}
    reference = reference_section(result, metrics)
    breakdown = {name.removeprefix("energy_").removesuffix("_pj"): result.mean(name) * 1e-6 for name in energy_names}
    # From the count, not the mean: 9398 of 10,000 is 93.98, not 93.97999999999999.
    accuracy = 100.0 * int(frame["correct"].sum()) / len(frame) if "correct" in frame and len(frame) else None
    comp = float(frame["computation_pct"].mean()) if len(frame) and network.n_units else None
    bitops = float(frame["bitops_pct"].mean()) if len(frame) else None
    summary = {
        "schema": SCHEMA,
        "tool_version": __version__,
        "trace": result.source,
        "network": network.name,
        "hw": hw.label,
        "hw_config": hw.path,
        "hw_model": hw.model,
        "n_inputs": result.n_inputs,
        "batch": {"size": result.batch, "policy": result.policy},
        "precision_mapping": precision_mapping(result),
        "weights_resident_on_chip": table.weights_resident,
        "fmap_compression": fmap_compression(network, hw),
        "budget_pct": result.budget_pct,
        "computation_pct": _finite(comp),
        "bitops_pct": _finite(bitops),
        "accuracy": accuracy,
        "reference": reference,
        "metrics": metrics,
        "energy_breakdown_uj": breakdown,
        "energy_components": energy_components(hw),
        "area": area_section(hw),
        "budget": budget_section(result, metrics, comp, bitops),
    }
    return summary


def reference_section(result, metrics: dict) -> dict:
    """What "% of reference" compares against (dfs_sim/reference.py), and each metric's mean as a
    share of the same network run at it on the same accelerator and batch."""
    cycles, energy_pj, dram_bits, sram_bits = result.table.per_input_columns(result.reference_cost)
    values = {"cycles": cycles, "latency_us": result.reference_latency_cycles / (result.hw.clock_mhz * 1e6) * 1e6,
              "energy_uj": energy_pj * 1e-6, "dram_bytes": dram_bits / 8, "sram_bytes": sram_bits / 8}
    section = result.reference.to_dict(result.hw)
    section["metrics"] = {name: {"value": float(value),
                                 "pct": _finite(float(100.0 * metrics[name]["mean"] / value)) if value else None}
                          for name, value in values.items()}
    return section


def area_section(hw) -> dict | None:
    """The config's area (dfs_sim/hardware/area.py), or None where its YAML has no `area:` section."""
    from dfs_sim.hardware.area import area_of

    area = area_of(hw)
    return None if area is None else area.to_dict()


def energy_components(hw) -> dict:
    """The human name of each energy_breakdown_uj entry: compute, weight buffer, activation buffer
    (inputs, or inputs and outputs), output buffer, DRAM, static. One source for the report's
    breakdown line, the energy figure and its CSV."""
    names = {"compute": "compute"}
    for buffer in hw.buffers:
        holds = set(buffer.holds)
        if holds == {"weights"}:
            names[buffer.name] = "weight buffer"
        elif holds == {"outputs"}:
            names[buffer.name] = "output buffer"
        elif "weights" in holds:
            names[buffer.name] = "shared buffer"
        else:
            names[buffer.name] = "activation buffer"
    names.update({"dram": "DRAM", "static": "static (leakage)"})
    return names


def fmap_compression(network, hw) -> dict:
    """How feature maps cross the DRAM link, and for how many layers the trace knows their sparsity."""
    known = ~(np.isnan(network.column("input_density")) & np.isnan(network.column("output_density")))
    return {"scheme": hw.dram.fmap_compression, "layers_with_densities": int(known.sum()),
            "layers": len(network.layers)}


def precision_mapping(result) -> dict:
    table, hw = result.table, result.hw
    cases = []
    names = [o.name for o in result.options] + ["full-precision reference"]
    for i, name in enumerate(names):
        declared = [int(b) for b in table.case_bits[i]]
        if declared == [0, 0]:
            cases.append({"option": name, "declared_bits": declared, "runs_at_bits": None})
            continue
        cases.append({"option": name, "declared_bits": declared,
                      "stored_bits": [int(b) for b in table.mapped_bits[i]],
                      "runs_at_bits": [int(b) for b in table.runs_at_bits[i]]})
    rule = ("full precision runs at its declared bits" if hw.precision.full_precision == "declared"
            else f"full precision maps to the native {hw.precision.max_bits} bits")
    return {"full_precision": hw.precision.full_precision, "rule": rule, "wider": hw.precision.wider,
            "bit_serial": table.bit_serial, "cases": cases[:-1]}


def budget_section(result, metrics: dict, comp, bitops) -> dict:
    section = {"target_pct": result.budget_pct, "target_metric": result.budget_metric, "against_target": None,
               "absolute": {}}
    target = result.budget_pct
    if target is not None:
        against = {}
        if "budget_metric_pct" in result.per_input:  # first, the metric the budget was trained in
            against[result.budget_metric] = float(result.per_input["budget_metric_pct"].mean())
        against.update({"computation_pct": comp, "bitops_pct": bitops})
        against.update({name: stats["pct_of_full_precision"] for name, stats in metrics.items()})
        section["against_target"] = {
            name: {"pct": _finite(value), "over_target_points": _finite(value - target) if value is not None else None}
            for name, value in against.items()}
    frame = result.per_input
    for metric, limit in result.absolute_budgets.items():
        values = frame[metric].to_numpy()
        over = int(np.count_nonzero(values > limit))
        section["absolute"][metric] = {"budget": float(limit), "n_over": over,
                                       "share_over_pct": 100.0 * over / len(values) if len(values) else 0.0}
    return section
