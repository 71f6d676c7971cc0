"""Per-layer reports of a simulation result: one row per layer, or per layer and precision case it ran at
(docs/report-format.md). `result` is a dfs_sim.engine.SimResult."""
from __future__ import annotations

import numpy as np
import pandas as pd

from dfs_sim.cost.records import DATAFLOW_NAMES, loop_order_names, resident_names


def per_layer_frame(result) -> pd.DataFrame:
    """One row per layer: per-input means of every metric (docs/report-format.md)."""
    network = result.network
    frame = pd.DataFrame({
        "layer": [layer.name for layer in network.layers],
        "kind": [layer.kind for layer in network.layers],
        "unit": [network.units[layer.unit] if layer.unit is not None else "" for layer in network.layers],
        "precision": [layer.precision for layer in network.layers],
        "macs": [layer.macs for layer in network.layers],
    })
    _add_metrics(frame, result.table.metric_names, result.layer_totals / max(result.n_inputs, 1))
    frame["full_precision_cycles"] = _full_precision_cycles(result)
    return frame


def per_layer_case_frame(result) -> pd.DataFrame:
    """One row per layer and precision case: a gated layer gets a row per option it can run at, any other
    layer one row (case '-'). Metrics are per-input means of what the layer spent at that case (summed over
    a layer's rows they give its per_layer row); the mapping columns describe one run of a batch of the
    configured size at that case (docs/report-format.md)."""
    network, table = result.network, result.table
    n_options = len(result.options)
    rows, cells = [], []
    for i, layer in enumerate(network.layers):
        cases = [c for c in range(n_options) if table.stored_bits[i, c, 1] > 0] if layer.follows_unit else [0]
        for c in cases:
            rows.append((i, c))
            cells.append({
                "layer": layer.name, "kind": layer.kind,
                "unit": network.units[layer.unit] if layer.unit is not None else "", "precision": layer.precision,
                "case": result.options[c].name if layer.follows_unit else "-",
                "macs": layer.macs,
                "w_bits": int(table.stored_bits[i, c, 0]), "a_bits": int(table.stored_bits[i, c, 1]),
                "output_stored_bits": int(table.stored_bits[i, c, 2]),
                "share_of_inputs": result.layer_runs[i, c] / max(result.n_inputs, 1) if layer.follows_unit else 1.0,
            })
    frame = pd.DataFrame(cells)
    index = tuple(np.array(rows, dtype=np.int64).reshape(-1, 2).T)
    _add_metrics(frame, table.metric_names, result.layer_case_totals[index] / max(result.n_inputs, 1))
    frame["full_precision_cycles"] = _full_precision_cycles(result)[index[0]]
    found = table.mapping[index]
    frame["mapped_batch"] = result.batch
    for tile in ("tile_b", "tile_oh", "tile_ow", "tile_ic", "tile_kernel_rows", "tile_oc"):
        frame[tile] = found[tile]
    frame["loop_order"] = [loop_order_names(code) for code in found["loop_order"]]
    frame["utilization"] = found["utilization"]
    frame["resident"] = [resident_names(bits) for bits in found["resident"]]
    frame["dataflow"] = [DATAFLOW_NAMES[flow] for flow in found["dataflow"]]
    return frame


def _add_metrics(frame: pd.DataFrame, names, values: np.ndarray) -> None:
    for i, name in enumerate(names):
        if name.endswith("_pj"):
            frame[name.removesuffix("_pj") + "_uj"] = values[:, i] * 1e-6
        else:
            frame[name] = values[:, i]
    energy = [c for c in frame.columns if c.startswith("energy_")]
    frame["energy_uj"] = frame[energy].sum(axis=1)


def _full_precision_cycles(result) -> np.ndarray:
    table = result.table
    return table.layer_cost[:, table.full_case, result.batch - 1, table.metric("cycles")] / result.batch
